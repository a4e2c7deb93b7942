// The only place that calls libpng. libpng reports errors with longjmp, which Swift cannot catch, so every
// call that may fail runs here under setjmp and comes back to Swift as a status code and a message.
#include "png_io.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// What libpng said, for one read or one write. libpng explains a bad IHDR in warnings ("Image width is zero in
// IHDR", ...) and then fails with a bare "Invalid IHDR data": the IHDR warnings are kept here and appended to that
// error. Each of reader_state and writer_state holds its own, and each is reached only through callbacks registered
// with that same state (on_read_* with the reader's, on_write_* with the writer's): a callback never casts another
// operation's state.
typedef struct {
    char *message;
    size_t message_size;
    char warnings[192];
} diagnostics;

static void copy_message(char *message, size_t message_size, const char *text) {
    if (message == NULL || message_size == 0) return;
    snprintf(message, message_size, "%s", text);
}

static void record_error(diagnostics *diag, png_const_charp text) {
    if (diag == NULL || diag->message == NULL || diag->message_size == 0) return;
    if (text == NULL) text = "libpng error";
    if (diag->warnings[0] != '\0' && strstr(text, "IHDR") != NULL) {
        snprintf(diag->message, diag->message_size, "%s (%s)", text, diag->warnings);
    } else {
        copy_message(diag->message, diag->message_size, text);
    }
}

// Ancillary-chunk problems (bad CRC on tEXt, unknown sRGB profile, ...) are not fatal and not kept; IHDR ones are
// kept for record_error. Bounded by the warnings buffer: later warnings that do not fit are dropped.
static void record_warning(diagnostics *diag, png_const_charp text) {
    if (diag == NULL || text == NULL || strstr(text, "IHDR") == NULL) return;
    size_t used = strnlen(diag->warnings, sizeof(diag->warnings));
    if (used + 3 >= sizeof(diag->warnings)) return;
    snprintf(diag->warnings + used, sizeof(diag->warnings) - used, "%s%s", used > 0 ? "; " : "", text);
}

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
    diagnostics diag;
} reader_state;

static void on_read_error(png_structp png, png_const_charp text) {
    reader_state *state = (reader_state *)png_get_error_ptr(png);
    if (state != NULL) record_error(&state->diag, text);
    png_longjmp(png, 1);
}

static void on_read_warning(png_structp png, png_const_charp text) {
    reader_state *state = (reader_state *)png_get_error_ptr(png);
    if (state != NULL) record_warning(&state->diag, text);
}

static void read_from_memory(png_structp png, png_bytep out, png_size_t length) {
    reader_state *state = (reader_state *)png_get_io_ptr(png);
    if (length > state->size - state->offset) {
        char text[96];
        snprintf(text, sizeof(text), "file is truncated (unexpected end of data after %zu bytes)", state->size);
        png_error(png, text);
    }
    memcpy(out, state->data + state->offset, length);
    state->offset += length;
}

int pngio_decode(const uint8_t *data, size_t size, uint64_t max_pixels, const uint8_t *background,
                 pngio_info *info, uint8_t **pixels_out, char *message, size_t message_size) {
    *pixels_out = NULL;
    memset(info, 0, sizeof(*info));
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        copy_message(message, message_size, size == 0 ? "file is empty" : "not a PNG file (bad signature)");
        return PNGIO_ERROR;
    }
    reader_state state = {data, size, 0, {message, message_size, {0}}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, on_read_error, on_read_warning);
    if (png == NULL) return PNGIO_OUT_OF_MEMORY;
    png_infop png_info = png_create_info_struct(png);
    if (png_info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        return PNGIO_OUT_OF_MEMORY;
    }
    // Written after setjmp, read after longjmp: must be volatile.
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile composite = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(composite);
        free(rows);
        png_destroy_read_struct(&png, &png_info, NULL);
        return PNGIO_ERROR;
    }
    png_set_read_fn(png, &state, read_from_memory);
    // Bound what ancillary chunks (iCCP, zTXt, ...) may allocate; the image itself is bounded by max_pixels.
    png_set_user_limits(png, 0x7fffffffU, 0x7fffffffU);
    png_set_chunk_cache_max(png, 1000);
    png_set_chunk_malloc_max(png, 16u * 1024 * 1024);
    // Skip, unread and unstored, every ancillary chunk the decoder does not use. Otherwise each zTXt/iTXt/iCCP is
    // inflated and kept until the end (up to 1000 chunks of up to 16 MB each: a 300 KB file held 320 MB).
    // Only tRNS matters for the pixels (gAMA/cHRM/iCCP/sRGB are ignored, as Pillow's convert("RGB") does).
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    static const png_byte unused_chunks[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0"
                                            "sCAL\0sPLT\0sRGB\0sTER\0tEXt\0tIME\0zTXt";
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, unused_chunks, (int)(sizeof(unused_chunks) / 5));
#ifdef PNGIO_FUZZING
    // Fuzz/build.sh: let mutated chunks past the CRC and Adler-32 checks so that the fuzzer reaches the decoder.
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#ifdef PNG_IGNORE_ADLER32
    png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
#endif
    png_read_info(png, png_info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, png_info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    info->width = width;
    info->height = height;
    info->bit_depth = bit_depth;
    info->color_type = color_type;
    info->interlaced = interlace == PNG_INTERLACE_ADAM7;
    int has_alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(png, png_info, PNG_INFO_tRNS) != 0;
    info->has_alpha = has_alpha;
    // The limit, and what any buffer below could hold (RGBA, 4 bytes a pixel) without size_t overflow.
    if ((uint64_t)width * (uint64_t)height > max_pixels || (uint64_t)width * (uint64_t)height > SIZE_MAX / 8) {
        png_destroy_read_struct(&png, &png_info, NULL);
        return PNGIO_TOO_MANY_PIXELS;
    }

    // Explicit transforms to 8-bit RGB(A) of the stored samples. No png_set_gamma: Pillow ignores gAMA/iCCP/sRGB.
    png_set_expand(png);  // palette -> RGB, gray 1/2/4 -> 8, tRNS -> alpha
    if (bit_depth == 16) png_set_strip_16(png);  // the high byte, as Pillow does for 16-bit RGB(A)
    if ((color_type & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(png);
    int composite_alpha = has_alpha && background != NULL;
    if (has_alpha && !composite_alpha) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, png_info);

    size_t channels = composite_alpha ? 4 : 3;
    size_t row_bytes = (size_t)width * channels;
    if (png_get_rowbytes(png, png_info) != row_bytes) png_error(png, "unexpected row layout after transforms");
    pixels = malloc(row_bytes * (size_t)height);
    rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (pixels == NULL || rows == NULL) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &png_info, NULL);
        return PNGIO_OUT_OF_MEMORY;
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);  // reads to IEND: a missing IEND or a bad CRC after the image data is an error
    free(rows);
    rows = NULL;

    if (composite_alpha) {
        size_t count = (size_t)width * (size_t)height;
        composite = malloc(count * 3);
        if (composite == NULL) {
            free(pixels);
            png_destroy_read_struct(&png, &png_info, NULL);
            return PNGIO_OUT_OF_MEMORY;
        }
        for (size_t i = 0; i < count; i++) {
            unsigned a = pixels[4 * i + 3];
            for (int c = 0; c < 3; c++) {
                unsigned value = pixels[4 * i + c] * a + background[c] * (255u - a);
                composite[3 * i + c] = (uint8_t)((value + 127u) / 255u);
            }
        }
        free(pixels);
        pixels = composite;
        composite = NULL;
    }
    png_destroy_read_struct(&png, &png_info, NULL);
    *pixels_out = pixels;
    return PNGIO_OK;
}

typedef struct {
    FILE *file;
    diagnostics diag;
} writer_state;

static void on_write_error(png_structp png, png_const_charp text) {
    writer_state *state = (writer_state *)png_get_error_ptr(png);
    if (state != NULL) record_error(&state->diag, text);
    png_longjmp(png, 1);
}

static void on_write_warning(png_structp png, png_const_charp text) {
    writer_state *state = (writer_state *)png_get_error_ptr(png);
    if (state != NULL) record_warning(&state->diag, text);
}

static void write_to_file(png_structp png, png_bytep data, png_size_t length) {
    writer_state *state = (writer_state *)png_get_io_ptr(png);
    if (fwrite(data, 1, length, state->file) != length) png_error(png, strerror(errno));
}

static void flush_file(png_structp png) {
    writer_state *state = (writer_state *)png_get_io_ptr(png);
    if (fflush(state->file) != 0) png_error(png, strerror(errno));
}

int pngio_write_rgb8(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height, char *message,
                     size_t message_size) {
    copy_message(message, message_size, "");
    FILE *file = fopen(path, "wb");
    if (file == NULL) {
        copy_message(message, message_size, strerror(errno));
        return PNGIO_IO_ERROR;
    }
    writer_state state = {file, {message, message_size, {0}}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, on_write_error, on_write_warning);
    png_infop png_info = png == NULL ? NULL : png_create_info_struct(png);
    if (png_info == NULL) {
        png_destroy_write_struct(&png, NULL);
        fclose(file);
        return PNGIO_OUT_OF_MEMORY;
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        png_destroy_write_struct(&png, &png_info);
        fclose(file);
        return PNGIO_IO_ERROR;
    }
    png_set_write_fn(png, &state, write_to_file, flush_file);
    // libpng's default user limits (1,000,000 a side) would refuse some valid images that the decoder accepts (it
    // lifts the same limits); the caller bounds what it writes (overlays: Overlay.Budget).
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    // Checks the size (zero, over 2^31 - 1) with warnings and an error before any pixel is read.
    png_set_IHDR(png, png_info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pixels == NULL) png_error(png, "no pixels");
    png_write_info(png, png_info);
    rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (rows == NULL) png_error(png, "out of memory");
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)(pixels + (size_t)y * width * 3);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    rows = NULL;
    png_destroy_write_struct(&png, &png_info);
    /* EINVAL: the target cannot be synced (a device or pipe such as /dev/null); there is nothing to make durable. */
    if (fflush(file) != 0 || (fsync(fileno(file)) != 0 && errno != EINVAL)) {
        copy_message(message, message_size, strerror(errno));
        fclose(file);
        return PNGIO_IO_ERROR;
    }
    if (fclose(file) != 0) {
        copy_message(message, message_size, strerror(errno));
        return PNGIO_IO_ERROR;
    }
    return PNGIO_OK;
}

void pngio_free(void *pointer) { free(pointer); }

const char *pngio_libpng_version(void) { return png_get_libpng_ver(NULL); }
