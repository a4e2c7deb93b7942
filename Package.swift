// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "vitclassify",
    products: [
        .executable(name: "vitclassify", targets: ["vitclassify"]),
        .library(name: "ViTKit", targets: ["ViTKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation --target ViTKit` builds the DocC catalog (Sources/ViTKit/ViTKit.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        .systemLibrary(
            name: "CLibJPEG", pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg62-turbo-dev"]), .brew(["jpeg-turbo"])]),
        // zlib (already linked through libpng): compresses the attention data of `explore` pages.
        .systemLibrary(
            name: "CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .systemLibrary(
            name: "CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),
        // libpng's errors arrive by longjmp, which Swift cannot catch: the setjmp lives in this small C target.
        .target(name: "PNGIO", dependencies: ["CLibPNG"]),
        // libjpeg's errors arrive through error_exit, which must not return: the same setjmp layer for JPEG.
        .target(name: "JPEGIO", dependencies: ["CLibJPEG"]),
        // The kernels (packed GEMMs, LayerNorm, softmax, GELU), one file per instruction set, chosen at run time.
        // No unsafe flags, so that other packages can depend on this one: FMA contraction is a pragma in each file,
        // and the optimiser's level is the configuration's (`-c release` for speed, as the tests run).
        .target(name: "ViTKernels"),
        // Resources: the ImageNet label lists (tools/make_imagenet_labels.py) and the timm architecture table.
        .target(
            name: "ViTKit",
            dependencies: [
                "PNGIO", "JPEGIO", .target(name: "CBLAS", condition: .when(platforms: [.linux])), "CZlib", "ViTKernels",
            ],
            resources: [.copy("Resources")]),
        .executableTarget(
            name: "vitclassify",
            dependencies: [
                "ViTKit", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(
            name: "ViTKitTests",
            dependencies: ["ViTKit", "vitclassify", "PNGIO", "JPEGIO", "ViTKernels", "CBLAS", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            resources: [.copy("Resources")]),
    ]
)
