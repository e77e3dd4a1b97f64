/* gpu-share platform definitions for applications.
 *
 * A window surface on gpu-share is created from this struct (passed as the
 * EGLNativeWindowType of eglCreateWindowSurface, or as the native_window
 * pointer of eglCreatePlatformWindowSurfaceEXT). The server backs it with an
 * off-screen surface of that size; every eglSwapBuffers hands it the frame.
 */
#ifndef TESSERA_GPU_H
#define TESSERA_GPU_H
#include <stdint.h>

struct tessera_window {
    uint32_t width;
    uint32_t height;
};

#endif
