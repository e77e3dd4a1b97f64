/* The IVI's GPU flood for the cockpit's cluster-first check
 * (docs/cockpit.md): an unmodified GLES2 program that, every frame, makes
 * thousands of small draws (each with its own uniform, so none can be
 * merged) and uploads a large texture, draws it once over the window, and
 * presents. It never sleeps: it takes all the GPU it can get.
 *
 *   ivi-flood [--frames N] [--draws N] [--upload SIDE] [--work K]
 *
 * --draws: draws per frame (default 2000), each a triangle over about 5 %
 * of the 256x256 window whose fragments iterate sin() K times (--work,
 * default 1), so the GPU's work is in the fragments, not in the calls;
 * --upload: the texture's side in pixels, RGBA (default 1024: 4 MiB a
 * frame); --frames: stop after N (default: run until killed). Every 30 frames it prints
 *
 *   ivi-flood: frames 30 period mean 52.3 ms duty 0.412
 *
 * frames: so far; period: the mean time between presents over those 30;
 * duty: this process's CPU time over the wall time of those 30 frames,
 * what ivi-busy burns to load the CPU alike without the GPU. Exits 3 when
 * the session is lost (as ivi does), 2 on a bad argument. */
#include "harness.h"
#include "tessera_gpu.h"
#include "duty.h"

#define FW 256
#define FH 256

static long arg(const char *v, long lo, long hi, const char *what) {
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == 0 || *end != 0 || n < lo || n > hi) {
        fprintf(stderr, "ivi-flood: %s must be a number from %ld to %ld, not '%s'\n", what, lo, hi, v);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv) {
    long frames = -1, draws = 2000, side = 1024, work = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--frames") && i + 1 < argc) frames = arg(argv[++i], 1, 1L << 30, "--frames");
        else if (!strcmp(argv[i], "--draws") && i + 1 < argc) draws = arg(argv[++i], 1, 1000000, "--draws");
        else if (!strcmp(argv[i], "--upload") && i + 1 < argc) side = arg(argv[++i], 1, 2048, "--upload");
        else if (!strcmp(argv[i], "--work") && i + 1 < argc) work = arg(argv[++i], 0, 1000, "--work");
        else { fprintf(stderr, "ivi-flood: bad argument %s\n", argv[i]); return 2; }
    }
    EGLConfig cfg = setup_config(EGL_WINDOW_BIT);
    static struct tessera_window win = {FW, FH};
    surf = eglCreateWindowSurface(dpy, cfg, (EGLNativeWindowType)&win, NULL);
    if (surf == EGL_NO_SURFACE) fail("surface");
    if (!eglMakeCurrent(dpy, surf, surf, ctx)) fail("eglMakeCurrent");
    glViewport(0, 0, FW, FH);

    /* The many draws: a small triangle moved by a uniform. */
    char fs[512];
    snprintf(fs, sizeof fs,
             "precision mediump float; varying vec2 c;"
             "void main() { vec4 v = vec4(c, gl_FragCoord.xy / 256.0);"
             " for (int i = 0; i < %ld; i++) { v = sin(v * 1.7 + v.yzwx); }"
             " gl_FragColor = vec4(v.xyz * 0.5 + 0.5, 1.0); }",
             work);
    GLuint tri = program("attribute vec2 pos; uniform vec2 at; varying vec2 c;"
                         "void main() { c = at * 0.5 + 0.5; gl_Position = vec4(0.3 * pos + at, 0.0, 1.0); }",
                         fs);
    GLint u_at = glGetUniformLocation(tri, "at");
    /* The upload, sampled once over the window. */
    GLuint tex = program("attribute vec2 pos; varying vec2 uv;"
                         "void main() { uv = pos * 0.5 + 0.5; gl_Position = vec4(pos, 0.0, 1.0); }",
                         "precision mediump float; uniform sampler2D t; varying vec2 uv;"
                         "void main() { gl_FragColor = texture2D(t, uv); }");
    static const GLfloat quad[] = {-1, -1, 1, -1, -1, 1, 1, 1};
    pos_vbo(quad, sizeof quad);
    GLuint t;
    glGenTextures(1, &t);
    glBindTexture(GL_TEXTURE_2D, t);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_LINEAR);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, side, side, 0, GL_RGBA, GL_UNSIGNED_BYTE, NULL);
    unsigned char *px = malloc((size_t)side * side * 4);
    if (!px) fail("texture memory");
    for (long i = 0; i < side * side * 4; i++) px[i] = (unsigned char)(i * 7 / 3);
    if (glGetError() != GL_NO_ERROR) fail("set-up");

    struct duty d;
    duty_start(&d);
    for (long n = 0; frames < 0 || n < frames; n++) {
        glUseProgram(tri);
        for (long i = 0; i < draws; i++) {
            float k = (float)((i * 37 + n) % 1000) / 1000.0f;
            glUniform2f(u_at, 1.8f * k - 0.9f, 1.8f * (float)(i % 97) / 97.0f - 0.9f);
            glDrawArrays(GL_TRIANGLE_STRIP, 0, 3);
        }
        px[(n * 4099) % (side * side * 4)] ^= 0xff; /* new contents each frame */
        glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, side, side, GL_RGBA, GL_UNSIGNED_BYTE, px);
        glUseProgram(tex);
        glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
        if (!eglSwapBuffers(dpy, surf)) {
            fprintf(stderr, "ivi-flood: session lost at frame %ld\n", n);
            return 3;
        }
        /* The end of its set-up (llvmpipe compiles on the first draws). */
        if (n == 0) { printf("ivi-flood: first frame out\n"); fflush(stdout); }
        duty_frame(&d, "ivi-flood", n + 1);
    }
    free(px);
    teardown();
    return 0;
}
