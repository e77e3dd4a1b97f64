/* gpu-share benchmarks: frames per second of three workloads, the same
 * binary run natively and through gpu-share.
 *   bench draws     many small draw calls per frame
 *   bench upload    a texture and a vertex buffer uploaded every frame
 *   bench readback  a full-frame glReadPixels every frame
 *   bench roundtrip 1000 glGetError calls per frame (sync call latency)
 *   bench sync      1000 1x1 glReadPixels per frame (a sync call that must
 *                   reach the server, whatever the client keeps locally)
 *   bench query     1000 glCheckFramebufferStatus per frame (a sync call
 *                   that reaches the server's driver but not the GPU)
 *   bench rtt [N]   N of each of those two sync calls timed one by one:
 *                   min, median and mean (a call another client's work
 *                   delays moves the mean, not the median)
 * Every frame ends with glFinish (natively) or a pixel read, so that the
 * GPU work is inside the measured time both ways. */
#include "harness.h"
#include <pthread.h>
#include <time.h>

#define SIZE 256
#define DRAWS 2000

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One line per call kind: each call timed alone, after one untimed. */
static void rtt(int n, unsigned char *px) {
    double *t = calloc((size_t)n, sizeof *t);
    if (!t) fail("calloc");
    for (int kind = 0; kind < 2; kind++) {
        double sum = 0;
        for (int i = -1; i < n; i++) {
            double a = now();
            if (kind == 0) glCheckFramebufferStatus(GL_FRAMEBUFFER);
            else glReadPixels(0, 0, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, px);
            double d = (now() - a) * 1e9;
            if (i >= 0) { t[i] = d; sum += d; }
        }
        qsort(t, (size_t)n, sizeof *t, cmp_double);
        printf("rtt %s min %.0f median %.0f mean %.0f ns (%d calls)\n",
               kind == 0 ? "query" : "sync", t[0], t[n / 2], sum / n, n);
    }
    free(t);
}

static int run(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "draws";
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    EGLConfig cfg = setup_config(EGL_PBUFFER_BIT);
    const EGLint pattrs[] = {EGL_WIDTH, SIZE, EGL_HEIGHT, SIZE, EGL_NONE};
    surf = eglCreatePbufferSurface(dpy, cfg, pattrs);
    if (!eglMakeCurrent(dpy, surf, surf, ctx)) fail("eglMakeCurrent");
    glViewport(0, 0, SIZE, SIZE);
    GLuint p = program("attribute vec4 pos; attribute vec2 attr; varying vec2 t; uniform vec4 off;"
                       "void main() { gl_Position = pos * 0.05 + off; t = attr; }",
                       "precision mediump float; varying vec2 t; uniform sampler2D s;"
                       "void main() { gl_FragColor = texture2D(s, t) + vec4(t, 0.0, 1.0); }");
    glUseProgram(p);
    GLint off = glGetUniformLocation(p, "off");
    static GLfloat quad[4 * 4 * 256];
    for (int i = 0; i < 256; i++) {
        GLfloat *q = quad + i * 16;
        const GLfloat v[16] = {-1, -1, 0, 0, 1, -1, 1, 0, -1, 1, 0, 1, 1, 1, 1, 1};
        memcpy(q, v, sizeof v);
    }
    GLuint vbo, tex;
    glGenBuffers(1, &vbo);
    glBindBuffer(GL_ARRAY_BUFFER, vbo);
    glBufferData(GL_ARRAY_BUFFER, sizeof quad, quad, GL_STATIC_DRAW);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 16, (void *)0);
    glVertexAttribPointer(1, 2, GL_FLOAT, GL_FALSE, 16, (void *)8);
    glEnableVertexAttribArray(0);
    glEnableVertexAttribArray(1);
    static unsigned char texels[SIZE * SIZE * 4];
    glGenTextures(1, &tex);
    glBindTexture(GL_TEXTURE_2D, tex);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, SIZE, SIZE, 0, GL_RGBA, GL_UNSIGNED_BYTE, texels);
    static unsigned char px[SIZE * SIZE * 4];
    if (!strcmp(mode, "rtt")) {
        int n = argc > 2 ? atoi(argv[2]) : 200;
        if (n < 1) fail("rtt: N must be at least 1");
        rtt(n, px);
        teardown();
        return 0;
    }
    int frames = 0;
    double t0 = now(), t;
    do {
        glClear(GL_COLOR_BUFFER_BIT);
        if (!strcmp(mode, "draws")) {
            for (int i = 0; i < DRAWS; i++) {
                glUniform4f(off, (i % 40) / 20.0f - 1, (i / 40 % 40) / 20.0f - 1, 0, 0);
                glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
            }
        } else if (!strcmp(mode, "upload")) {
            for (size_t i = 0; i < sizeof texels; i += 64) texels[i] = (unsigned char)(frames + i);
            quad[0] = -1 + (frames % 10) * 0.01f;
            glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, SIZE, SIZE, 0, GL_RGBA, GL_UNSIGNED_BYTE, texels);
            glBufferData(GL_ARRAY_BUFFER, sizeof quad, quad, GL_DYNAMIC_DRAW);
            glUniform4f(off, 0, 0, 0, 0);
            glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
        } else if (!strcmp(mode, "roundtrip")) {
            /* A frame of 1000 calls that each wait for an answer. */
            for (int i = 0; i < 1000; i++) glGetError();
        } else if (!strcmp(mode, "query")) {
            for (int i = 0; i < 1000; i++) glCheckFramebufferStatus(GL_FRAMEBUFFER);
        } else if (!strcmp(mode, "sync")) {
            for (int i = 0; i < 1000; i++) glReadPixels(0, 0, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, px);
        } else {
            glUniform4f(off, 0, 0, 0, 0);
            glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
            glReadPixels(0, 0, SIZE, SIZE, GL_RGBA, GL_UNSIGNED_BYTE, px);
        }
        if (strcmp(mode, "readback") && strcmp(mode, "sync")) glFinish();
        eglSwapBuffers(dpy, surf);
        frames++;
        t = now() - t0;
    } while (t < seconds);
    printf("%s fps %.1f (%d frames in %.2f s, error 0x%x)\n", mode, frames / t, frames, t, glGetError());
    teardown();
    return 0;
}

/* BENCH_THREAD=1 runs everything on a second thread, as gpu-server runs
 * each session: it tells whether a driver is slower off the main thread.
 * BENCH_THREAD=2 does too, after one EGL call on the main thread (as
 * gpu-server looks its entry points up there): glvnd then sees a second
 * thread call in and switches the vendor to its multi-threaded mode. */
struct args { int argc; char **argv; int rc; };
static void *on_thread(void *p) {
    struct args *a = p;
    a->rc = run(a->argc, a->argv);
    return NULL;
}

int main(int argc, char **argv) {
    const char *t = getenv("BENCH_THREAD");
    if (!t || (strcmp(t, "1") && strcmp(t, "2"))) return run(argc, argv);
    if (!strcmp(t, "2") && !eglGetProcAddress("glUniform4f")) fail("eglGetProcAddress");
    struct args a = {argc, argv, 1};
    pthread_t th;
    if (pthread_create(&th, NULL, on_thread, &a)) fail("pthread_create");
    pthread_join(th, NULL);
    return a.rc;
}
