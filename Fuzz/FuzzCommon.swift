// Shared by the fuzz targets (compiled into each).
import Foundation

/// Every error must be a single line that names its file.
func checkOneLine(_ error: ViTError) {
    let text = error.errorDescription ?? ""
    precondition(!text.isEmpty && !text.contains("\n") && !text.contains("\r"), "not one line: \(text)")
}
