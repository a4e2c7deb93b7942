#ifndef VITCLASSIFY_PNG_IO_H
#define VITCLASSIFY_PNG_IO_H

#include <stddef.h>
#include <stdint.h>

/// Status codes returned by the functions below.
enum {
    PNGIO_OK = 0,
    PNGIO_ERROR = 1,          // libpng reported an error; message holds its text
    PNGIO_TOO_MANY_PIXELS = 2, // width*height exceeds max_pixels; nothing large was allocated
    PNGIO_OUT_OF_MEMORY = 3,
    PNGIO_IO_ERROR = 4,       // open/write/close failed (message holds strerror), or libpng refused to write
};

/// What the file's header said, before any transformation.
typedef struct {
    uint32_t width;
    uint32_t height;
    int bit_depth;
    int color_type;   // PNG_COLOR_TYPE_*
    int interlaced;   // 1 for Adam7
    int has_alpha;    // alpha channel or tRNS chunk
} pngio_info;

/// Decodes a PNG held in memory into 8-bit RGB (3 bytes per pixel, rows top to bottom).
///
/// Samples are the stored values: no gamma or colour-profile conversion. Palette and tRNS expand to colours,
/// 1/2/4-bit gray scales to 0-255, 16-bit samples keep their high byte (as Pillow).
/// Alpha is dropped unless `background` is non-null (3 bytes, R G B), in which case pixels are composited over it:
/// round((c*a + bg*(255-a)) / 255).
/// On success *pixels is a malloc'd buffer of width*height*3 bytes that the caller frees with pngio_free.
/// The pixel limit is checked against the header before any buffer for the image is allocated.
int pngio_decode(const uint8_t *data, size_t size, uint64_t max_pixels, const uint8_t *background,
                 pngio_info *info, uint8_t **pixels, char *message, size_t message_size);

/// Writes 8-bit RGB pixels (width*height*3 bytes) as a PNG file at `path` (created or truncated).
/// The caller writes to a temporary path and renames it into place.
/// Any size PNG allows is written (1 to 2^31-1 a side; libpng's default limit of 1,000,000 a side is lifted, as
/// for reading); others fail with PNGIO_IO_ERROR and libpng's reason, e.g. "Invalid IHDR data (Image width is zero
/// in IHDR)". The writer keeps its own error and warning state: nothing is shared with pngio_decode.
int pngio_write_rgb8(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                     char *message, size_t message_size);

void pngio_free(void *pointer);

/// The libpng version string this module runs against.
const char *pngio_libpng_version(void);

#endif
