#ifndef VITCLASSIFY_JPEG_IO_H
#define VITCLASSIFY_JPEG_IO_H

#include <stddef.h>
#include <stdint.h>

/// Status codes returned by jpegio_decode.
enum {
    JPEGIO_OK = 0,
    JPEGIO_ERROR = 1,           // libjpeg reported an error (or a warning that means lost pixels); message holds why
    JPEGIO_TOO_MANY_PIXELS = 2, // width*height from the frame header exceeds max_pixels; nothing large was allocated
    JPEGIO_OUT_OF_MEMORY = 3,
};

/// What the file's headers said (filled as far as they were read, also on failure).
typedef struct {
    uint32_t width;       // from the SOF marker
    uint32_t height;
    int components;       // 1 (gray), 3 (YCbCr or RGB) or 4 (CMYK or YCCK); others are refused
    int color_space;      // libjpeg's J_COLOR_SPACE for the stored data: 1 gray, 2 RGB, 3 YCbCr, 4 CMYK, 5 YCCK
    int progressive;      // 1 for a progressive (SOF2) file
    int arithmetic;       // 1 for arithmetic coding
    int restart_interval; // MCUs between restart markers (0: none)
    int adobe_transform;  // the Adobe APP14 transform code, -1 without an Adobe marker
    int h_samp[4];        // sampling factors of the first 4 components (0 for absent ones)
    int v_samp[4];
    int scans;            // scans read (after a successful decode)
} jpegio_info;

/// Decodes a JPEG held in memory into 8-bit RGB (3 bytes per pixel, rows top to bottom), as Pillow's
/// `Image.open(...).convert("RGB")` does with the same libjpeg-turbo:
///
/// - decoder settings are libjpeg's defaults, which Pillow keeps: accurate integer IDCT (JDCT_ISLOW), fancy
///   upsampling, block smoothing;
/// - gray (1 component) is replicated to R = G = B;
/// - 4-component files are read as CMYK (libjpeg converts YCCK to CMYK), taken as Adobe-inverted as Pillow always
///   does ("CMYK;I"), and converted with Pillow's formula: with k = the stored K sample and c = a stored C/M/Y sample,
///   R/G/B = k - (((255 - c) * k + 128) + (((255 - c) * k + 128) >> 8)) >> 8.
///
/// Every libjpeg warning is an error (not gray or garbage pixels), except three about metadata: an unknown Adobe
/// transform code (libjpeg's guess is the one Pillow gets), an unknown JFIF revision, and junk bytes between the header
/// segments before the first scan. So premature end of data (a truncated file), a marker inside entropy-coded data,
/// bad Huffman or arithmetic codes, missing restart markers, an inconsistent progression, odd SOS parameters and junk
/// after a scan's entropy-coded data ("N extraneous bytes before marker 0xd9") all fail. Pillow ignores every warning;
/// it fails on truncated files only. Progressive files with more than JPEGIO_MAX_SCANS scans are refused (crafted
/// files with thousands of scans take minutes; real ones have about ten).
///
/// The pixel limit is checked against the frame header before libjpeg allocates anything for the image.
/// On success *pixels is a malloc'd buffer of width*height*3 bytes that the caller frees with jpegio_free.
int jpegio_decode(const uint8_t *data, size_t size, uint64_t max_pixels, jpegio_info *info, uint8_t **pixels,
                  char *message, size_t message_size);

/// Scans a progressive file may have.
#define JPEGIO_MAX_SCANS 500

void jpegio_free(void *pointer);

/// The libjpeg-turbo version this module was built against, e.g. "2.1.5".
const char *jpegio_libjpeg_version(void);

#endif
