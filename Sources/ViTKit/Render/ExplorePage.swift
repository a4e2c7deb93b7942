import Foundation

/// The `explore` page: one self-contained HTML file (CSS, JavaScript, images and data inline) that shows an image,
/// its predictions and every attention row of every layer and head, drawn over the image with ``Overlay``'s geometry.
///
/// The page's code lives in `Resources/explore/` (`explore.html`, `explore.css`, `explore.js`); this type fills in
/// the template. The attention goes in as one binary block (``AttentionBlock``), deflated and base64-encoded inside a
/// JSON `<script>`; the browser inflates it with `DecompressionStream('deflate')`.
package enum ExplorePage {
    /// The rollout fusions the page offers, in the block's order after the layers' heads.
    package static let fusions: [HeadSelection] = [.mean, .max, .min]

    /// The largest side of the image drawn in the page (larger images are reduced by area averaging).
    package static let budget = Overlay.Budget(maxSide: 1024, maxPixels: 1024 * 768)

    /// Every attention row of an image, quantised.
    ///
    /// The block holds `sets = layers · heads + 3` row sets (each layer's heads, then the rollout product fused by mean,
    /// max and min), each `queries` rows of `tokens` values (query → key): one row per token, and for models without
    /// a class token one more, the mean of the patch queries' rows (the map the CLI draws for them), stored rather
    /// than averaged in the page so that it carries one row's quantisation error. Three little-endian arrays:
    /// 1. `scale: Float32[sets · queries]`: the largest value of the row over the *patch* keys;
    /// 2. `prefix: Float32[sets · queries · prefixTokens]`: the values over the prefix keys (class, registers), as they are;
    /// 3. `patches: UInt8 or UInt16[sets · queries · patches]`: the level `round(value / scale · (2^bits − 1))`, minus
    ///    (modulo 2^bits) the level of the same key in the previous query's row of the set (PNG's "Up" filter:
    ///    neighbouring queries look at similar keys, which deflate then finds; 9% smaller on a random-weight ViT-B/16).
    ///
    /// The scale is taken over the patches, not the whole row, because a map is drawn over the patches divided by
    /// its largest value: a class token that attends mostly to itself would otherwise leave its patch values in the
    /// bottom level. A value comes back within `scale / (2 · (2^bits − 1))` of the original.
    package struct AttentionBlock: Sendable {
        package let layers: Int, heads: Int, tokens: Int, prefixTokens: Int, bits: Int
        /// Rows per set: `tokens`, plus one (the mean of the patch queries) without a class token.
        package let queries: Int
        package let bytes: [UInt8]

        package var sets: Int { layers * heads + ExplorePage.fusions.count }
        package var patches: Int { tokens - prefixTokens }
        var levels: Float { bits == 8 ? 255 : 65535 }

        /// Quantises `maps` (and its three rollout products, `discardRatio` as in ``AttentionMaps/rollout(fusion:discardRatio:)``).
        package init(_ maps: AttentionMaps, bits: Int, discardRatio: Double = 0) throws {
            guard bits == 8 || bits == 16 else { throw ViTError.invalidArgument("attention is stored with 8 or 16 bits, not \(bits)") }
            layers = maps.layers
            heads = maps.heads
            tokens = maps.tokens
            prefixTokens = maps.prefixTokens
            self.bits = bits
            let n = maps.tokens, p = maps.prefixTokens, g = n - p, classToken = maps.hasClassToken
            queries = n + (classToken ? 0 : 1)
            /// Without a class token, the mean of the patch queries' rows goes after the rows (as the CLI's maps).
            func withMean(_ rows: [Double]) -> [Float] {
                var out = rows.map(Float.init)
                guard !classToken else { return out }
                var mean = [Double](repeating: 0, count: n)
                for q in p..<n { for k in 0..<n { mean[k] += rows[q * n + k] } }
                out += mean.map { Float($0 / Double(g)) }
                return out
            }
            var rowSets: [[Float]] = []
            for l in 0..<maps.layers {
                for h in 0..<maps.heads {
                    rowSets.append(classToken ? maps.probabilities[l][h] : withMean(maps.probabilities[l][h].map(Double.init)))
                }
            }
            for fusion in ExplorePage.fusions {
                rowSets.append(withMean(try maps.rolloutMatrix(fusion: fusion, discardRatio: discardRatio)))
            }
            let sets = rowSets.count, levels: Float = bits == 8 ? 255 : 65535, rows = queries
            var scales = [Float](repeating: 0, count: sets * rows)
            var prefix = [Float](repeating: 0, count: sets * rows * p)
            var out = [UInt8](repeating: 0, count: sets * rows * (4 + 4 * p + g * bits / 8))
            let patchBase = sets * rows * (4 + 4 * p)
            var previous = [UInt16](repeating: 0, count: g)
            for (s, rowSet) in rowSets.enumerated() {
                for k in 0..<g { previous[k] = 0 }
                for q in 0..<rows {
                    let row = rowSet[(q * n)..<((q + 1) * n)]
                    let r = s * rows + q
                    let scale = row.dropFirst(p).max() ?? 0
                    scales[r] = scale
                    for k in 0..<p { prefix[r * p + k] = row[row.startIndex + k] }
                    for k in 0..<g {
                        let v = row[row.startIndex + p + k]
                        let level = scale > 0 ? UInt16(min(max((v / scale * levels).rounded(), 0), levels)) : 0
                        let delta = level &- previous[k]
                        previous[k] = level
                        let o = patchBase + (r * g + k) * (bits / 8)
                        out[o] = UInt8(truncatingIfNeeded: delta)
                        if bits == 16 { out[o + 1] = UInt8(truncatingIfNeeded: delta >> 8) }
                    }
                }
            }
            func put(_ values: [Float], at offset: Int) {
                for (i, v) in values.enumerated() {
                    let b = v.bitPattern.littleEndian
                    for j in 0..<4 { out[offset + 4 * i + j] = UInt8(truncatingIfNeeded: b >> (8 * j)) }
                }
            }
            put(scales, at: 0)
            put(prefix, at: sets * rows * 4)
            bytes = out
        }

        /// Reads a block back (the inverse of the page's JavaScript decoder, for tests).
        package init(bytes: [UInt8], layers: Int, heads: Int, tokens: Int, prefixTokens: Int, classToken: Bool, bits: Int) {
            self.bytes = bytes
            self.layers = layers
            self.heads = heads
            self.tokens = tokens
            self.prefixTokens = prefixTokens
            self.bits = bits
            queries = tokens + (classToken ? 0 : 1)
        }

        private func float(at offset: Int) -> Float {
            var b: UInt32 = 0
            for j in 0..<4 { b |= UInt32(bytes[offset + j]) << (8 * j) }
            return Float(bitPattern: b)
        }

        /// The largest error a value of row `query` of row set `set` can carry.
        package func bound(set: Int, query: Int) -> Float { float(at: 4 * (set * queries + query)) / (2 * levels) }

        /// Row `query` of row set `set` (`layer · heads + head`, or `layers · heads + f` for rollout fusion `f`),
        /// prefix keys first, dequantised. Query `tokens` is the mean of the patch queries (models without a class token).
        package func row(set: Int, query: Int) -> [Float] {
            let n = queries, p = prefixTokens, g = patches, r = set * n + query
            let scale = float(at: 4 * r)
            let prefixBase = sets * n * 4, patchBase = sets * n * (4 + 4 * p)
            var row = (0..<p).map { float(at: prefixBase + 4 * (r * p + $0)) }
            for k in 0..<g {
                // Undo the Up filter: the level is the sum of the deltas of rows 0…query, modulo 2^bits.
                var level: UInt16 = 0
                for earlier in (set * n)...r {
                    let o = patchBase + (earlier * g + k) * (bits / 8)
                    level &+= bits == 8 ? UInt16(bytes[o]) : UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8
                }
                if bits == 8 { level &= 0xFF }
                row.append(Float(level) / levels * scale)
            }
            return row
        }
    }

    /// What a page shows besides the attention.
    package struct Content {
        package var imageName: String
        package var modelName: String
        package var image: RGBImage
        package var predictions: [Prediction]
        package var preprocessing: Preprocessing
        package var architecture: (classToken: Bool, distillationToken: Bool, registers: Int)
        /// The first view: `rollout` or a layer, and `mean`/`max`/`min` or a head.
        package var layer: AttentionMapKind = .rollout
        package var head: HeadSelection = .mean
        package var colormap: Colormap = .inferno
        package var alpha: Double = 0.5
        /// Class-specific maps over the patch grid (method, target class, its label, values), drawn as they are.
        package var explanations: [(method: String, target: Int, label: String, values: [Float])] = []

        package init(
            imageName: String, modelName: String, image: RGBImage, predictions: [Prediction], preprocessing: Preprocessing,
            architecture: (classToken: Bool, distillationToken: Bool, registers: Int)
        ) {
            self.imageName = imageName
            self.modelName = modelName
            self.image = image
            self.predictions = predictions
            self.preprocessing = preprocessing
            self.architecture = architecture
        }
    }

    /// The names of the prefix tokens, in the model's order (class, distillation, registers).
    static func tokenNames(_ a: (classToken: Bool, distillationToken: Bool, registers: Int)) -> [String] {
        (a.classToken ? ["CLS"] : []) + (a.distillationToken ? ["DIST"] : []) + (0..<a.registers).map { "REG\($0)" }
    }

    /// The page's HTML.
    ///
    /// - Throws: ``ViTError`` when a resource file is missing or the static overlay cannot be drawn.
    package static func html(_ content: Content, maps: AttentionMaps, block: AttentionBlock) throws -> String {
        let image = content.image
        let (w, h) = Overlay.size(width: image.width, height: image.height, budget: budget)
        let display = RGBImage(width: w, height: h, trustedPixels: Overlay.resampled(image, width: w, height: h))
        let staticMap = try maps.map(content.layer, heads: content.head, fusion: content.head)
        let overlay = Overlay.render(
            image: image, map: staticMap, gridHeight: maps.gridHeight, gridWidth: maps.gridWidth,
            preprocessing: content.preprocessing, colormap: content.colormap, alpha: Float(content.alpha), budget: budget)
        let g = content.preprocessing.geometry(width: image.width, height: image.height)
        let compressed = try Deflate.compress(block.bytes)
        let layerText: String
        switch content.layer {
        case .rollout: layerText = "rollout"
        case .last: layerText = String(maps.layers - 1)
        case .layer(let l): layerText = String(l)
        }
        let meta: JSONValue = .object([
            ("version", .int(1)),
            ("model", .string(content.modelName)),
            (
                "image",
                .object([
                    ("name", .string(content.imageName)), ("width", .int(image.width)), ("height", .int(image.height)),
                    ("displayWidth", .int(w)), ("displayHeight", .int(h)),
                ])
            ),
            (
                "geometry",
                .object([
                    ("resizedWidth", .int(g.resizedWidth)), ("resizedHeight", .int(g.resizedHeight)),
                    ("cropLeft", .int(g.cropLeft)), ("cropTop", .int(g.cropTop)),
                    ("outputWidth", .int(g.outputWidth)), ("outputHeight", .int(g.outputHeight)),
                ])
            ),
            ("grid", .array([.int(maps.gridHeight), .int(maps.gridWidth)])),
            ("layers", .int(maps.layers)), ("heads", .int(maps.heads)), ("tokens", .int(maps.tokens)),
            ("prefixTokens", .int(maps.prefixTokens)), ("classToken", .bool(maps.hasClassToken)),
            ("tokenNames", .array(tokenNames(content.architecture).map(JSONValue.string))),
            ("fusions", .array(fusions.map { .string($0.description) })),
            (
                "predictions",
                .array(
                    content.predictions.map {
                        .object([
                            ("rank", .int($0.rank)), ("index", .int($0.index)), ("label", .string($0.label)),
                            ("probability", .double($0.probability)),
                        ])
                    })
            ),
            (
                "view",
                .object([
                    ("layer", .string(layerText)), ("head", .string(content.head.description)),
                    ("colormap", .string(content.colormap.rawValue)), ("alpha", .double(content.alpha)),
                ])
            ),
            (
                "colormaps",
                .object(
                    [Colormap.inferno, .viridis].map { ($0.rawValue, .string(Data($0.table).base64EncodedString())) })
            ),
            (
                "explanations",
                .array(
                    content.explanations.map { e in
                        .object([
                            ("method", .string(e.method)), ("target", .int(e.target)), ("label", .string(e.label)),
                            ("values", .array(e.values.map { .float($0) })),
                        ])
                    })
            ),
            ("queries", .int(block.queries)), ("bits", .int(block.bits)), ("filter", .string("up")), ("compression", .string("deflate")), ("rawBytes", .int(block.bytes.count)),
            ("data", .string(Data(compressed).base64EncodedString())),
        ])
        let rows = content.predictions.map { p in
            "<tr><td>\(p.rank)</td><td>\(escape(p.label))</td><td>\(String(format: "%.2f%%", p.probability * 100))</td></tr>"
        }.joined(separator: "\n")
        let mapName = content.layer == .rollout ? "rollout (\(content.head))" : "layer \(layerText), head \(content.head)"
        return try fill(
            try resource("explore.html"),
            [
                "TITLE": escape("\(content.imageName) · \(content.modelName) · vitclassify explore"),
                "IMAGE_NAME": escape(content.imageName),
                "MODEL_NAME": escape(content.modelName),
                "STYLE": try resource("explore.css"),
                "SCRIPT": try resource("explore.js"),
                "DATA": meta.rendered.replacingOccurrences(of: "<", with: "\\u003c"),
                "IMAGE_URI": "data:image/png;base64," + (try pngData(display)),
                "OVERLAY_URI": "data:image/png;base64," + (try pngData(overlay)),
                "STATIC_MAP": escape(mapName),
                "WIDTH": String(w), "HEIGHT": String(h),
                "PREDICTIONS": rows,
            ])
    }

    /// The text of `Resources/explore/NAME`.
    static func resource(_ name: String) throws -> String {
        let url = try BundledResources.url("explore/" + name)
        return String(decoding: try FileIO.read(url.path, limit: 4 << 20), as: UTF8.self)
    }

    /// Replaces each `{{KEY}}` of `template` (each key must occur, values are not searched again).
    static func fill(_ template: String, _ values: [String: String]) throws -> String {
        var out = "", rest = Substring(template)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else { break }
            let key = String(rest[open.upperBound..<close.lowerBound])
            guard let value = values[key] else {
                throw ViTError.invalidArgument("explore.html has an unknown placeholder {{\(key)}}")
            }
            out += value
            rest = rest[close.upperBound...]
        }
        return out + rest
    }

    /// HTML text escaping (`&`, `<`, `>`, `"`, `'`).
    package static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// `image` as a base64 PNG (written through libpng to a temporary file).
    package static func pngData(_ image: RGBImage) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vitclassify-\(UUID().uuidString).png").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PNGEncoder.write(image, to: path)
        return try FileIO.read(path, limit: 1 << 30).base64EncodedString()
    }
}

extension FileIO {
    /// Writes `text` (UTF-8) to `path` so that it appears complete or not at all (see ``writeAtomically``).
    package static func writeText(_ text: String, to path: String, overwrite: Bool, protected: [String] = []) throws {
        try writeAtomically(path, overwrite: overwrite, protected: protected) { temporary in
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            } catch {
                throw ViTError.writeFailed(path: path, reason: (error as NSError).localizedFailureReason ?? "cannot write the file")
            }
        }
    }
}
