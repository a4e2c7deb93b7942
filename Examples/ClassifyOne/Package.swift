// swift-tools-version: 6.0
// A package that depends on vitclassify's library, ViTKit, the way any other package would: by git URL at a version.
// CI points VITCLASSIFY_PACKAGE_URL at a tagged local clone (file://…) to prove that SwiftPM accepts the dependency.
import Foundation
import PackageDescription

let url = ProcessInfo.processInfo.environment["VITCLASSIFY_PACKAGE_URL"] ?? "https://github.com/vitclassify/vitclassify.git"

let package = Package(
    name: "ClassifyOne",
    dependencies: [.package(url: url, from: "0.1.0")],
    targets: [
        .executableTarget(name: "ClassifyOne", dependencies: [.product(name: "ViTKit", package: "vitclassify")])
    ]
)
