import Foundation
import Testing

@testable import ViTKit

/// The platform shim: what replaces Linux-only or Intel-Mac-missing calls gives what they give here.
@Suite("Platform shim")
struct PlatformTests {
    #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
        @Test("half to float equals Float16's conversion for all 65,536 bit patterns")
        func halfConversion() {
            var mismatches = 0
            for bits in 0...UInt16.max {
                let ours = Half.float(bits: bits), reference = Float(Float16(bitPattern: bits))
                if ours.isNaN ? !(reference.isNaN && ours.bitPattern == reference.bitPattern) : ours.bitPattern != reference.bitPattern {
                    mismatches += 1
                }
            }
            #expect(mismatches == 0)
        }
    #endif

    @Test("the peak resident set is at least what this process holds, and the executable exists")
    func processFacts() {
        let held = [UInt8](repeating: 1, count: 64 << 20)
        #expect(Platform.peakResidentBytes() >= held.count)
        #expect(FileManager.default.isExecutableFile(atPath: Platform.executablePath))
    }
}
