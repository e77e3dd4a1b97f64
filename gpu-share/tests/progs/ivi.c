/* The cockpit's IVI client: an unmodified GLES2 program (built against the
 * Khronos headers, linked -lEGL -lGLESv2) that draws a media screen whose
 * every pixel depends on the frame number only, and stamps that number in
 * as the cluster does (cockpit_cluster's module comment: a black band at
 * the top left, a white start block, 16 bits MSB first, a white end block;
 * 8-pixel blocks 10 apart from (4, 4)).
 *
 *   ivi [--frames N] [--period-ms MS] [--stats K]
 *                                       window surface (through gpu-share):
 *                                       draws frames 0, 1, ... and presents
 *                                       each; exits 3 when the session is lost;
 *                                       with K, every K frames "ivi: frames N
 *                                       period mean P ms": P from the end of
 *                                       one swap to the next, sleep included
 *   ivi --ref N OUT                     frame N into a pbuffer (natively: the
 *                                       reference), written to OUT as raw RGBA,
 *                                       bottom row first */
#include "harness.h"
#include "tessera_gpu.h"
#include <time.h>

#define IW 256
#define IH 256

static GLint u_angle;

static void rect(int x, int y_top, int w, int h, float r, float g, float b) {
    glScissor(x, IH - y_top - h, w, h);
    glClearColor(r, g, b, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
}

static void draw(unsigned n) {
    glDisable(GL_SCISSOR_TEST);
    glClearColor(0.1f, 0.1f + 0.4f * (float)(n % 50) / 50.0f, 0.3f, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
    glUniform1f(u_angle, (float)(n % 360) * 0.0174533f);
    glDrawArrays(GL_TRIANGLES, 0, 3);
    glEnable(GL_SCISSOR_TEST);
    for (int i = 0; i < 8; i++) { /* an equaliser */
        int h = 10 + (int)((n * (unsigned)(i + 3) * 7u) % 60u);
        rect(40 + i * 22, IH - 8 - h, 16, h, 0.9f, 0.8f - 0.08f * i, 0.2f);
    }
    rect(0, 0, 4 + 18 * 10, 16, 0, 0, 0);
    for (int i = 0; i < 18; i++) {
        int on = i == 0 || i == 17 || ((n >> (16 - i)) & 1);
        if (on) rect(4 + i * 10, 4, 8, 8, 1, 1, 1);
    }
    glDisable(GL_SCISSOR_TEST);
}

int main(int argc, char **argv) {
    long frames = -1, period_ms = 40, ref = -1, stats = 0;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--frames") && i + 1 < argc) frames = atol(argv[++i]);
        else if (!strcmp(argv[i], "--period-ms") && i + 1 < argc) period_ms = atol(argv[++i]);
        else if (!strcmp(argv[i], "--ref") && i + 2 < argc) { ref = atol(argv[++i]); out = argv[++i]; }
        else if (!strcmp(argv[i], "--stats") && i + 1 < argc && atol(argv[i + 1]) > 0) stats = atol(argv[++i]);
        else { fprintf(stderr, "ivi: bad argument %s\n", argv[i]); return 2; }
    }
    EGLConfig cfg = setup_config(ref >= 0 ? EGL_PBUFFER_BIT : EGL_WINDOW_BIT);
    if (ref >= 0) {
        const EGLint pattrs[] = {EGL_WIDTH, IW, EGL_HEIGHT, IH, EGL_NONE};
        surf = eglCreatePbufferSurface(dpy, cfg, pattrs);
    } else {
        static struct tessera_window win = {IW, IH};
        surf = eglCreateWindowSurface(dpy, cfg, (EGLNativeWindowType)&win, NULL);
    }
    if (surf == EGL_NO_SURFACE) fail("surface");
    if (!eglMakeCurrent(dpy, surf, surf, ctx)) fail("eglMakeCurrent");
    glViewport(0, 0, IW, IH);
    GLuint p = program(
        "attribute vec2 pos; uniform float angle; varying vec3 c;"
        "void main() { float s = sin(angle), k = cos(angle);"
        " gl_Position = vec4(0.6 * vec2(k * pos.x - s * pos.y, s * pos.x + k * pos.y), 0.0, 1.0);"
        " c = vec3(pos.x + 0.5, pos.y + 0.5, 1.0 - pos.x); }",
        "precision mediump float; varying vec3 c; void main() { gl_FragColor = vec4(c, 1.0); }");
    glUseProgram(p);
    u_angle = glGetUniformLocation(p, "angle");
    static const GLfloat tri[] = {0.0f, 0.9f, -0.8f, -0.6f, 0.8f, -0.6f};
    pos_vbo(tri, sizeof tri);
    if (ref >= 0) {
        static unsigned char px[IW * IH * 4];
        draw((unsigned)ref);
        glReadPixels(0, 0, IW, IH, GL_RGBA, GL_UNSIGNED_BYTE, px);
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(px, sizeof px, 1, f) != 1 || fclose(f)) fail("writing the reference");
        teardown();
        return 0;
    }
    struct timespec since = {0, 0};
    for (unsigned n = 0; frames < 0 || n < (unsigned long)frames; n++) {
        draw(n);
        if (!eglSwapBuffers(dpy, surf)) {
            fprintf(stderr, "ivi: session lost at frame %u\n", n);
            return 3;
        }
        if (stats) {
            /* From frame 0's present on: its set-up is not a period. */
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (n > 0 && n % stats == 0) {
                double ms = (t.tv_sec - since.tv_sec) * 1e3 + (t.tv_nsec - since.tv_nsec) / 1e6;
                fprintf(stderr, "ivi: frames %u period mean %.1f ms\n", n, ms / stats);
            }
            if (n % stats == 0) since = t;
        }
        if (n % 100 == 0) fprintf(stderr, "ivi: frame %u\n", n);
        struct timespec ts = {period_ms / 1000, (period_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    teardown();
    return 0;
}
