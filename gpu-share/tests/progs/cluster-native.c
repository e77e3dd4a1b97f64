/* The cockpit cluster's frame as a plain GLES2 program, for running it
 * natively (no gpu-share) where the cluster's frames are rendered: in the
 * GPU service VM on its Mesa (`cargo xtask bench cockpit`). The same calls
 * as gpu-share/cluster (cockpit_cluster::Cluster: set-up, render, present)
 * with the same shaders and 256x256 size; the present is what gpu-server
 * does for the cluster's eglSwapBuffers: the swap, then the frame read back
 * (256x256 RGBA) for the compositor. No pacing: frames back to back.
 *
 *   cluster-native [--frames N]   N frames (default 90); every 30, "cluster-
 *                                 native: frames N frame mean F max M ms"
 *                                 (F: one frame's calls and its read-back)
 *   cluster-native --ref N OUT    frame N read back to OUT as raw RGBA,
 *                                 bottom row first (as cluster-host --ref) */
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES2/gl2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CW 256
#define CH 256
#define WINDOW 30

/* gpu-share/cluster/src/lib.rs: VS and FS. */
static const char *VS = "attribute vec2 pos; varying vec2 v;\n"
                        "void main() { v = pos; gl_Position = vec4(pos, 0.0, 1.0); }";
static const char *FS =
    "precision highp float; varying vec2 v;\n"
    "uniform vec2 needle; uniform float blink;\n"
    "float seg(vec2 p, vec2 a, vec2 b) {\n"
    "  vec2 pa = p - a, ba = b - a;\n"
    "  float h = clamp(dot(pa, ba) / dot(ba, ba), 0.0, 1.0);\n"
    "  return length(pa - ba * h);\n"
    "}\n"
    "vec3 dial(vec2 p, vec2 c, float ang, vec3 col) {\n"
    "  float r = 0.42; vec2 d = p - c; float l = length(d);\n"
    "  vec3 o = vec3(0.0);\n"
    "  if (abs(l - r) < 0.015) o = vec3(0.6);\n"
    "  float a = atan(d.y, d.x);\n"
    "  if (l > r - 0.07 && l < r - 0.02 && abs(fract(a / 0.3927 + 0.5) - 0.5) < 0.08) o = vec3(0.8);\n"
    "  if (seg(p, c, c + 0.9 * r * vec2(cos(ang), sin(ang))) < 0.014) o = col;\n"
    "  if (l < 0.03) o = vec3(0.9);\n"
    "  return o;\n"
    "}\n"
    "void main() {\n"
    "  vec3 col = vec3(0.03, 0.03, 0.08);\n"
    "  col += dial(v, vec2(-0.5, -0.05), needle.x, vec3(1.0, 0.45, 0.0));\n"
    "  col += dial(v, vec2(0.5, -0.05), needle.y, vec3(0.2, 0.8, 1.0));\n"
    "  if (v.y < -0.7 && v.y > -0.85) {\n"
    "    if (abs(v.x + 0.3) < 0.08 && blink > 0.5) col = vec3(0.0, 0.9, 0.1);\n"
    "    if (abs(v.x - 0.3) < 0.08 && blink < 0.5) col = vec3(1.0, 0.7, 0.0);\n"
    "  }\n"
    "  gl_FragColor = vec4(col, 1.0);\n"
    "}";

static EGLDisplay dpy;
static EGLSurface surf;
static GLint u_needle, u_blink;

static void fail(const char *what) {
    fprintf(stderr, "cluster-native: FAIL %s (egl 0x%x, gl 0x%x)\n", what, eglGetError(), glGetError());
    exit(1);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Cluster::new: a surfaceless display, the cluster's config (window bit
 * there, a pbuffer here: gpu-server backs a window surface with one). */
static void setup(void) {
    PFNEGLGETPLATFORMDISPLAYEXTPROC gpd =
        (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
    if (!gpd) fail("eglGetPlatformDisplayEXT");
    dpy = gpd(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
    if (dpy == EGL_NO_DISPLAY || !eglInitialize(dpy, NULL, NULL)) fail("eglInitialize");
    eglBindAPI(EGL_OPENGL_ES_API);
    const EGLint attrs[] = {EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8,
                            EGL_BLUE_SIZE, 8, EGL_RENDERABLE_TYPE, EGL_OPENGL_ES2_BIT, EGL_NONE};
    EGLConfig cfg;
    EGLint n = 0;
    if (!eglChooseConfig(dpy, attrs, &cfg, 1, &n) || n < 1) fail("eglChooseConfig");
    const EGLint cattrs[] = {EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE};
    EGLContext ctx = eglCreateContext(dpy, cfg, EGL_NO_CONTEXT, cattrs);
    const EGLint pattrs[] = {EGL_WIDTH, CW, EGL_HEIGHT, CH, EGL_NONE};
    surf = eglCreatePbufferSurface(dpy, cfg, pattrs);
    if (ctx == EGL_NO_CONTEXT || surf == EGL_NO_SURFACE) fail("context or surface");
    if (!eglMakeCurrent(dpy, surf, surf, ctx)) fail("eglMakeCurrent");
    GLuint p = glCreateProgram();
    const GLenum types[2] = {GL_VERTEX_SHADER, GL_FRAGMENT_SHADER};
    const char *srcs[2] = {VS, FS};
    for (int i = 0; i < 2; i++) {
        GLuint s = glCreateShader(types[i]);
        glShaderSource(s, 1, &srcs[i], NULL);
        glCompileShader(s);
        glAttachShader(p, s);
    }
    glBindAttribLocation(p, 0, "pos");
    glLinkProgram(p);
    GLint ok = 0;
    glGetProgramiv(p, GL_LINK_STATUS, &ok);
    if (!ok) fail("link");
    glUseProgram(p);
    u_needle = glGetUniformLocation(p, "needle");
    u_blink = glGetUniformLocation(p, "blink");
    GLuint vbo;
    glGenBuffers(1, &vbo);
    glBindBuffer(GL_ARRAY_BUFFER, vbo);
    static const GLfloat quad[8] = {-1, -1, 1, -1, -1, 1, 1, 1};
    glBufferData(GL_ARRAY_BUFFER, sizeof quad, quad, GL_STATIC_DRAW);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, (void *)0);
    glEnableVertexAttribArray(0);
    glViewport(0, 0, CW, CH);
}

/* cockpit_cluster::stamp: scissored clears, rows counted from the top. */
static void clear(unsigned x, unsigned y, unsigned w, unsigned h, float v) {
    glScissor((GLint)x, (GLint)(CH - y - h), (GLint)w, (GLint)h);
    glClearColor(v, v, v, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
}

/* Cluster::render: cockpit_cluster::instruments(n), the quad, the stamp. */
static void render(unsigned n) {
    float speed = (float)(n % 240) / 240.0f, rpm = (float)((n * 7) % 180) / 180.0f;
    glUniform2f(u_needle, 3.75f - speed * 4.3f, 3.75f - rpm * 4.3f);
    glUniform1f(u_blink, (float)((n / 15) % 2));
    glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
    glEnable(GL_SCISSOR_TEST);
    clear(0, 0, 4 + 18 * 10, 4 * 2 + 8, 0.0f);
    for (unsigned i = 0; i < 18; i++)
        if (i == 0 || i == 17 || ((n >> (16 - i)) & 1)) clear(4 + i * 10, 4, 8, 8, 1.0f);
    glDisable(GL_SCISSOR_TEST);
}

static unsigned char px[CW * CH * 4];

/* gpu-server's eglSwapBuffers of a window surface: the swap, the read-back. */
static void present(void) {
    if (!eglSwapBuffers(dpy, surf)) fail("eglSwapBuffers");
    glReadPixels(0, 0, CW, CH, GL_RGBA, GL_UNSIGNED_BYTE, px);
}

int main(int argc, char **argv) {
    long frames = 90, ref = -1;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--frames") && i + 1 < argc && atol(argv[i + 1]) > 0) frames = atol(argv[++i]);
        else if (!strcmp(argv[i], "--ref") && i + 2 < argc) { ref = atol(argv[++i]); out = argv[++i]; }
        else { fprintf(stderr, "cluster-native: bad argument %s\n", argv[i]); return 2; }
    }
    setup();
    if (ref >= 0) {
        render((unsigned)ref);
        present();
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(px, sizeof px, 1, f) != 1 || fclose(f)) fail("writing the reference");
        return 0;
    }
    double sum = 0, max = 0;
    for (long n = 0; n < frames; n++) {
        double t = now();
        render((unsigned)n);
        present();
        double ms = (now() - t) * 1e3;
        sum += ms;
        if (ms > max) max = ms;
        if ((n + 1) % WINDOW == 0) {
            printf("cluster-native: frames %ld frame mean %.2f max %.2f ms\n", n + 1, sum / WINDOW, max);
            fflush(stdout);
            sum = max = 0;
        }
    }
    if (glGetError() != GL_NO_ERROR) fail("a GL error");
    printf("cluster-native: done\n");
    return 0;
}
