// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "vitclassify",
    products: [
        .executable(name: "vitclassify", targets: ["vitclassify"]),
        .library(name: "ViTKit", targets: ["ViTKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        .systemLibrary(
            name: "CLibPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        .systemLibrary(
            name: "CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),
        // libpng's errors arrive by longjmp, which Swift cannot catch: the setjmp lives in this small C target.
        .target(name: "PNGIO", dependencies: ["CLibPNG"]),
        // Element-wise kernels (LayerNorm, softmax, GELU): always optimised, even in debug builds, so that tests
        // over thousands of images stay fast; multiversioned for AVX-512 / AVX2 at load time.
        .target(name: "ViTKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=fast"])]),
        .target(name: "ViTKit", dependencies: ["PNGIO", "CBLAS", "ViTKernels"]),
        .executableTarget(
            name: "vitclassify",
            dependencies: [
                "ViTKit", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(
            name: "ViTKitTests",
            dependencies: ["ViTKit", "vitclassify", "PNGIO", "ViTKernels", "CBLAS", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            resources: [.copy("Resources")]),
    ]
)
