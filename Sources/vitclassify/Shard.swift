/// One part of a file list when N processes share the work: `--shard K/N` takes the files at positions
/// K−1, K−1+N, K−1+2N, … of the sorted list, so N shards classify every file exactly once.
struct Shard: Sendable, Equatable {
    let index: Int
    let count: Int

    /// Parses `K/N` with 1 ≤ K ≤ N.
    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, k >= 1, k <= n else { return nil }
        index = k
        count = n
    }

    func select<T>(_ items: [T]) -> [T] {
        items.enumerated().filter { $0.offset % count == index - 1 }.map(\.element)
    }
}
