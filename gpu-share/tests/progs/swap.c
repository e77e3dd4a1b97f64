/* A window surface through gpu-share: draw, swap, and print the frame's hash
 * (computed as in harness.h) so the test can compare it with the PNG the
 * server writes for this client. Only meaningful through gpu-share: Mesa's
 * surfaceless platform has no windows. */
#include "harness.h"
#include "tessera_gpu.h"

int main(void) {
    EGLConfig cfg = setup_config(EGL_WINDOW_BIT);
    static struct tessera_window win = {W, H};
    surf = eglCreateWindowSurface(dpy, cfg, (EGLNativeWindowType)&win, NULL);
    if (surf == EGL_NO_SURFACE) fail("eglCreateWindowSurface");
    if (!eglMakeCurrent(dpy, surf, surf, ctx)) fail("eglMakeCurrent");
    EGLint w = 0, h = 0;
    eglQuerySurface(dpy, surf, EGL_WIDTH, &w);
    eglQuerySurface(dpy, surf, EGL_HEIGHT, &h);
    printf("window %dx%d\n", w, h);
    for (int frame = 0; frame < 3; frame++) {
        glClearColor(frame * 0.3f, 0.5f, 1.0f - frame * 0.3f, 1.0f);
        glClear(GL_COLOR_BUFFER_BIT);
        glEnable(GL_SCISSOR_TEST);
        glScissor(8 * frame, 8, 16, 24);
        glClearColor(1, 1, 0, 1);
        glClear(GL_COLOR_BUFFER_BIT);
        glDisable(GL_SCISSOR_TEST);
        if (frame == 2) dump_pixels("frame");
        if (!eglSwapBuffers(dpy, surf)) fail("eglSwapBuffers");
    }
    printf("current surface ok: %d\n", eglGetCurrentSurface(EGL_DRAW) == surf);
    teardown();
    return 0;
}
