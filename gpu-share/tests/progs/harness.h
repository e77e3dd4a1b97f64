/* Shared set-up for the gpu-share test programs: a surfaceless EGL display,
 * a GLES 2 context and a pbuffer, identical natively and through gpu-share.
 * Each program prints what it observes; the test compares the two runs. */
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES2/gl2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 64
#define H 64

static EGLDisplay dpy;
static EGLContext ctx;
static EGLSurface surf;

static void fail(const char *what) {
    fprintf(stderr, "FAIL: %s (egl error 0x%x)\n", what, eglGetError());
    exit(1);
}

static EGLConfig setup_config(EGLint surface_type) {
    PFNEGLGETPLATFORMDISPLAYEXTPROC gpd =
        (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
    if (!gpd) fail("eglGetPlatformDisplayEXT");
    dpy = gpd(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
    if (dpy == EGL_NO_DISPLAY) fail("display");
    EGLint major, minor;
    if (!eglInitialize(dpy, &major, &minor)) fail("eglInitialize");
    if (!eglBindAPI(EGL_OPENGL_ES_API)) fail("eglBindAPI");
    const EGLint attrs[] = {EGL_SURFACE_TYPE, surface_type, EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8,
                            EGL_BLUE_SIZE, 8, EGL_ALPHA_SIZE, 8, EGL_DEPTH_SIZE, 16,
                            EGL_RENDERABLE_TYPE, EGL_OPENGL_ES2_BIT, EGL_NONE};
    EGLConfig cfg;
    EGLint n = 0;
    if (!eglChooseConfig(dpy, attrs, &cfg, 1, &n) || n < 1) fail("eglChooseConfig");
    const EGLint cattrs[] = {EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE};
    ctx = eglCreateContext(dpy, cfg, EGL_NO_CONTEXT, cattrs);
    if (ctx == EGL_NO_CONTEXT) fail("eglCreateContext");
    return cfg;
}

static __attribute__((unused)) void setup(void) {
    EGLConfig cfg = setup_config(EGL_PBUFFER_BIT);
    const EGLint pattrs[] = {EGL_WIDTH, W, EGL_HEIGHT, H, EGL_NONE};
    surf = eglCreatePbufferSurface(dpy, cfg, pattrs);
    if (surf == EGL_NO_SURFACE) fail("eglCreatePbufferSurface");
    if (!eglMakeCurrent(dpy, surf, surf, ctx)) fail("eglMakeCurrent");
    glViewport(0, 0, W, H);
}

static void teardown(void) {
    eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    eglDestroySurface(dpy, surf);
    eglDestroyContext(dpy, ctx);
    eglTerminate(dpy);
}

static GLuint shader(GLenum type, const char *src) {
    GLuint s = glCreateShader(type);
    glShaderSource(s, 1, &src, NULL);
    glCompileShader(s);
    GLint ok = 0;
    glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
    if (!ok) {
        char log[1024];
        glGetShaderInfoLog(s, sizeof log, NULL, log);
        fprintf(stderr, "shader: %s\n", log);
        exit(1);
    }
    return s;
}

static __attribute__((unused)) GLuint program(const char *vs, const char *fs) {
    GLuint p = glCreateProgram();
    glAttachShader(p, shader(GL_VERTEX_SHADER, vs));
    glAttachShader(p, shader(GL_FRAGMENT_SHADER, fs));
    glBindAttribLocation(p, 0, "pos");
    glBindAttribLocation(p, 1, "attr");
    glLinkProgram(p);
    GLint ok = 0;
    glGetProgramiv(p, GL_LINK_STATUS, &ok);
    if (!ok) fail("link");
    return p;
}

/* FNV-1a over the pixels plus a few samples, so a mismatch says where. */
static __attribute__((unused)) void dump_pixels(const char *tag) {
    static unsigned char px[W * H * 4];
    memset(px, 0, sizeof px);
    glReadPixels(0, 0, W, H, GL_RGBA, GL_UNSIGNED_BYTE, px);
    unsigned h = 2166136261u;
    for (size_t i = 0; i < sizeof px; i++) h = (h ^ px[i]) * 16777619u;
    printf("%s hash %08x", tag, h);
    const int pts[][2] = {{0, 0}, {W / 2, H / 2}, {W / 4, H / 3}, {W - 1, H - 1}, {W / 3, H * 3 / 4}};
    for (int i = 0; i < 5; i++) {
        const unsigned char *p = px + (pts[i][1] * W + pts[i][0]) * 4;
        printf(" (%d,%d)=%02x%02x%02x%02x", pts[i][0], pts[i][1], p[0], p[1], p[2], p[3]);
    }
    printf("\n");
}

/* The programs' usual pair: position and a per-vertex colour. */
#define COLOR_VS "attribute vec4 pos; attribute vec3 attr; varying vec3 c;" \
                 "void main() { gl_Position = pos; c = attr; }"
#define COLOR_FS "precision mediump float; varying vec3 c;" \
                 "void main() { gl_FragColor = vec4(c, 1.0); }"

/* A coloured triangle in a vertex buffer, set as attributes 0 and 1;
 * returns the buffer. */
static __attribute__((unused)) GLuint triangle_vbo(void) {
    static const GLfloat v[] = {-0.8f, -0.8f, 1, 0, 0, 0.8f, -0.8f, 0, 1, 0, 0.0f, 0.8f, 0, 0, 1};
    GLuint vbo;
    glGenBuffers(1, &vbo);
    glBindBuffer(GL_ARRAY_BUFFER, vbo);
    glBufferData(GL_ARRAY_BUFFER, sizeof v, v, GL_STATIC_DRAW);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 5 * sizeof(GLfloat), (void *)0);
    glVertexAttribPointer(1, 3, GL_FLOAT, GL_FALSE, 5 * sizeof(GLfloat), (void *)(2 * sizeof(GLfloat)));
    glEnableVertexAttribArray(0);
    glEnableVertexAttribArray(1);
    return vbo;
}

/* 2D positions in a vertex buffer, set as attribute 0; returns the buffer. */
static __attribute__((unused)) GLuint pos_vbo(const GLfloat *v, GLsizeiptr bytes) {
    GLuint vbo;
    glGenBuffers(1, &vbo);
    glBindBuffer(GL_ARRAY_BUFFER, vbo);
    glBufferData(GL_ARRAY_BUFFER, bytes, v, GL_STATIC_DRAW);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, 0);
    glEnableVertexAttribArray(0);
    return vbo;
}

/* A 3x3 grid of vertices over the viewport with colours, in client memory,
 * set as attributes 0 and 1 (client arrays). */
static __attribute__((unused)) void grid_client_arrays(void) {
    static GLfloat pos[9 * 2], col[9 * 3];
    for (int i = 0; i < 9; i++) {
        pos[i * 2] = (i % 3) - 1.0f;
        pos[i * 2 + 1] = (i / 3) - 1.0f;
        col[i * 3] = (i % 3) / 2.0f;
        col[i * 3 + 1] = (i / 3) / 2.0f;
        col[i * 3 + 2] = (i & 1) ? 1.0f : 0.2f;
    }
    glBindBuffer(GL_ARRAY_BUFFER, 0);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, pos);
    glVertexAttribPointer(1, 3, GL_FLOAT, GL_FALSE, 0, col);
    glEnableVertexAttribArray(0);
    glEnableVertexAttribArray(1);
}

static __attribute__((unused)) void print_error(const char *what) {
    printf("%s: error 0x%04x\n", what, glGetError());
}
