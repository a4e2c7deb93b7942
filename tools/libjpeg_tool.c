// Fixture helper for tools/make_jpeg_fixtures.py: the system libjpeg(-turbo) driven directly.
//
//   libjpeg_tool encode in.raw out.jpg WIDTH HEIGHT IN_CS OUT_CS QUALITY SAMPLING SCANS ARITH RESTART_ROWS ADOBE
//       writes what Pillow cannot: YCCK, 4:4:0 and other sampling factors, arithmetic coding, progressive files
//       whose scans leave coefficients out, hundreds of scans, no Adobe marker on CMYK, two components.
//       IN_CS/OUT_CS: gray rgb ycbcr cmyk ycck unknown2 (2 components, no colour space). SAMPLING: e.g.
//       2x2,1x1,1x1. SCANS: 0 sequential, 1 libjpeg's progressive script, 2 DC only, 3 DC then AC 1-5 of the first
//       component only, 4 successive approximation of every coefficient alone (3 scans each: > 500 scans).
//       ADOBE: -1 libjpeg's default, 0 no Adobe marker, 1 Adobe marker. in.raw: WIDTH*HEIGHT*components samples.
//   libjpeg_tool decode in.jpg out.raw
//       decodes with libjpeg's defaults as Sources/JPEGIO does (ISLOW, fancy upsampling, block smoothing; gray,
//       RGB or CMYK out) and writes width, height, components (3 little-endian int32) and the samples: how this
//       system's libjpeg-turbo decodes, to measure where it differs from the one bundled with Pillow.
//
// Build: cc -O2 tools/libjpeg_tool.c -ljpeg -o libjpeg_tool (make_jpeg_fixtures.py does it in a temporary folder).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

static J_COLOR_SPACE space(const char *name, int *components) {
    static const struct { const char *name; J_COLOR_SPACE space; int components; } spaces[] = {
        {"gray", JCS_GRAYSCALE, 1}, {"rgb", JCS_RGB, 3}, {"ycbcr", JCS_YCbCr, 3},
        {"cmyk", JCS_CMYK, 4},      {"ycck", JCS_YCCK, 4}, {"unknown2", JCS_UNKNOWN, 2},
    };
    for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++) {
        if (strcmp(name, spaces[i].name) == 0) {
            if (components) *components = spaces[i].components;
            return spaces[i].space;
        }
    }
    fprintf(stderr, "unknown colour space %s\n", name);
    exit(2);
}

static jpeg_scan_info script[1 + 4 * 63 * 3];

static int scan_script(int mode, int components) {
    int n = 0;
    if (mode == 2) {  // DC only: the AC coefficients never arrive (the decoder's block smoothing fills them in)
        for (int i = 0; i < components; i++) {
            script[n].comps_in_scan = 1;
            script[n].component_index[0] = i;
            script[n].Ss = script[n].Se = script[n].Ah = script[n].Al = 0;
            n++;
        }
    } else {  // 3 and 4: an interleaved DC scan first
        script[n].comps_in_scan = components;
        for (int i = 0; i < components; i++) script[n].component_index[i] = i;
        script[n].Ss = script[n].Se = script[n].Ah = script[n].Al = 0;
        n++;
        if (mode == 3) {
            script[n].comps_in_scan = 1;
            script[n].component_index[0] = 0;
            script[n].Ss = 1;
            script[n].Se = 5;
            script[n].Ah = script[n].Al = 0;
            n++;
        } else {
            for (int i = 0; i < components; i++) {
                for (int k = 1; k < 64; k++) {
                    int passes[3][2] = {{0, 2}, {2, 1}, {1, 0}};  // (Ah, Al): first pass, then two refinements
                    for (int p = 0; p < 3; p++) {
                        script[n].comps_in_scan = 1;
                        script[n].component_index[0] = i;
                        script[n].Ss = script[n].Se = k;
                        script[n].Ah = passes[p][0];
                        script[n].Al = passes[p][1];
                        n++;
                    }
                }
            }
        }
    }
    return n;
}

static int encode(char **argv) {
    int width = atoi(argv[3]), height = atoi(argv[4]), components = 0;
    J_COLOR_SPACE in = space(argv[5], &components), out = space(argv[6], NULL);
    int quality = atoi(argv[7]), scans = atoi(argv[9]), arith = atoi(argv[10]);
    int restart_rows = atoi(argv[11]), adobe = atoi(argv[12]);
    size_t row = (size_t)width * components;
    unsigned char *pixels = malloc(row * height);
    FILE *raw = fopen(argv[1], "rb");
    if (!raw || fread(pixels, 1, row * height, raw) != row * height) {
        fprintf(stderr, "short input\n");
        return 1;
    }
    fclose(raw);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    FILE *file = fopen(argv[2], "wb");
    jpeg_stdio_dest(&c, file);
    c.image_width = width;
    c.image_height = height;
    c.input_components = components;
    c.in_color_space = in;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, out);
    jpeg_set_quality(&c, quality, TRUE);
    const char *spec = argv[8];
    for (int i = 0; i < c.num_components && spec != NULL && *spec; i++) {
        if (sscanf(spec, "%dx%d", &c.comp_info[i].h_samp_factor, &c.comp_info[i].v_samp_factor) != 2) {
            fprintf(stderr, "bad sampling %s\n", argv[8]);
            return 2;
        }
        spec = strchr(spec, ',');
        if (spec) spec++;
    }
    if (scans == 1) jpeg_simple_progression(&c);
    if (scans >= 2) {
        c.num_scans = scan_script(scans, c.num_components);
        c.scan_info = script;
    }
    c.arith_code = arith != 0;
    c.restart_in_rows = restart_rows;
    if (adobe >= 0) c.write_Adobe_marker = adobe != 0;
    if (out != JCS_GRAYSCALE && out != JCS_YCbCr) c.write_JFIF_header = FALSE;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = pixels + row * c.next_scanline;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(file);
    free(pixels);
    return 0;
}

static void quiet(j_common_ptr cinfo) { (void)cinfo; }

static int decode(char **argv) {
    FILE *file = fopen(argv[2], "rb");
    if (!file) {
        perror(argv[2]);
        return 1;
    }
    struct jpeg_decompress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    err.output_message = quiet;  // warnings are not errors here: this is how libjpeg itself decodes
    jpeg_create_decompress(&c);
    jpeg_stdio_src(&c, file);
    jpeg_read_header(&c, TRUE);
    c.out_color_space = c.num_components == 1 ? JCS_GRAYSCALE : c.num_components == 3 ? JCS_RGB : JCS_CMYK;
    c.dct_method = JDCT_ISLOW;
    c.do_fancy_upsampling = TRUE;
    c.do_block_smoothing = TRUE;
    jpeg_start_decompress(&c);
    size_t row = (size_t)c.output_width * c.output_components;
    unsigned char *pixels = malloc(row * c.output_height);
    while (c.output_scanline < c.output_height) {
        JSAMPROW r = pixels + row * c.output_scanline;
        jpeg_read_scanlines(&c, &r, 1);
    }
    jpeg_finish_decompress(&c);
    FILE *out = fopen(argv[3], "wb");
    int header[3] = {(int)c.output_width, (int)c.output_height, c.output_components};
    fwrite(header, sizeof(int), 3, out);
    fwrite(pixels, 1, row * c.output_height, out);
    fclose(out);
    jpeg_destroy_decompress(&c);
    fclose(file);
    free(pixels);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 14 && strcmp(argv[1], "encode") == 0) return encode(argv + 1);
    if (argc == 4 && strcmp(argv[1], "decode") == 0) return decode(argv);
    fprintf(stderr, "usage: libjpeg_tool encode ... | libjpeg_tool decode in.jpg out.raw (see the comment at the top)\n");
    return 2;
}
