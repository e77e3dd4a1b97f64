/* EGL behaviour that must match natively: configs, surfaces, current state
 * and error cases with invalid handles. */
#include "harness.h"

static void egl_error(const char *what) {
    printf("%s: egl error 0x%04x\n", what, eglGetError());
}

int main(void) {
    setup();
    printf("client apis: %s\n", eglQueryString(dpy, EGL_CLIENT_APIS));
    EGLint id = 0, n = 0;
    eglQueryContext(dpy, ctx, EGL_CONFIG_ID, &id);
    EGLConfig cfg;
    const EGLint by_id[] = {EGL_CONFIG_ID, id, EGL_NONE};
    eglChooseConfig(dpy, by_id, &cfg, 1, &n);
    printf("config by id: %d\n", n);
    static const EGLint attrs[] = {EGL_RED_SIZE, EGL_GREEN_SIZE, EGL_BLUE_SIZE, EGL_ALPHA_SIZE,
                                   EGL_DEPTH_SIZE, EGL_STENCIL_SIZE, EGL_RENDERABLE_TYPE,
                                   EGL_SAMPLES, EGL_CONFIG_CAVEAT};
    for (unsigned i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        EGLint v = -1;
        eglGetConfigAttrib(dpy, cfg, attrs[i], &v);
        printf("attrib 0x%x = %d\n", attrs[i], v);
    }
    EGLint total = 0;
    eglGetConfigs(dpy, NULL, 0, &total);
    EGLint matching = 0;
    const EGLint es2[] = {EGL_RENDERABLE_TYPE, EGL_OPENGL_ES2_BIT, EGL_NONE};
    eglChooseConfig(dpy, es2, NULL, 0, &matching);
    printf("configs: some %d, es2 subset %d\n", total > 0, matching > 0 && matching <= total);
    EGLint w = 0, h = 0, v = 0;
    eglQuerySurface(dpy, surf, EGL_WIDTH, &w);
    eglQuerySurface(dpy, surf, EGL_HEIGHT, &h);
    eglQueryContext(dpy, ctx, EGL_CONTEXT_CLIENT_VERSION, &v);
    printf("surface %dx%d, client version %d\n", w, h, v);
    printf("current: ctx %d draw %d read %d dpy %d api 0x%x\n", eglGetCurrentContext() == ctx,
           eglGetCurrentSurface(EGL_DRAW) == surf, eglGetCurrentSurface(EGL_READ) == surf,
           eglGetCurrentDisplay() == dpy, eglQueryAPI());
    printf("proc glDrawArrays found: %d\n", eglGetProcAddress("glDrawArrays") != NULL);
    egl_error("no error yet");
    printf("query bad name: %d\n", eglQueryString(dpy, 0x1234) == NULL);
    egl_error("query bad name");
    const EGLint cattrs[] = {EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE};
    printf("context from bad config: %d\n", eglCreateContext(dpy, (EGLConfig)0x1234, EGL_NO_CONTEXT, cattrs) == EGL_NO_CONTEXT);
    egl_error("bad config");
    printf("make current bad surface: %d\n", eglMakeCurrent(dpy, (EGLSurface)0x5678, (EGLSurface)0x5678, ctx));
    egl_error("bad surface");
    const EGLint pattrs[] = {EGL_WIDTH, 8, EGL_HEIGHT, 8, EGL_NONE};
    EGLSurface extra = eglCreatePbufferSurface(dpy, cfg, pattrs);
    printf("destroy: %d", eglDestroySurface(dpy, extra));
    printf(" again: %d\n", eglDestroySurface(dpy, extra));
    egl_error("destroy twice");
    printf("release current: %d\n", eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT));
    printf("current after release: %d\n", eglGetCurrentContext() == EGL_NO_CONTEXT);
    eglMakeCurrent(dpy, surf, surf, ctx);
    glClearColor(0.25f, 0.5f, 0.75f, 1);
    glClear(GL_COLOR_BUFFER_BIT);
    dump_pixels("after re-current");
    teardown();
    return 0;
}
