/* Shaders with the trigonometric and exponential built-ins, in the vertex
 * and the fragment stage. llvmpipe's JIT code calls libm for some of them
 * (sinf, expf, ...), resolved in the process that runs the driver: the
 * server must offer them as a native program does (dEQP's shaders.operator
 * and shaders.random groups). */
#include "harness.h"

int main(void) {
    setup();
    GLuint vp = program("attribute vec4 pos; attribute vec3 attr; varying vec3 c;"
                        "void main() { gl_Position = pos;"
                        "  c = vec3(sin(attr.x * 3.0) * 0.5 + 0.5, cos(attr.y * 2.0) * 0.5 + 0.5,"
                        "           exp(attr.z - 1.0) * pow(attr.x + 0.5, 1.5) * 0.5); }",
                        COLOR_FS);
    GLuint fp = program(COLOR_VS,
                        "precision mediump float; varying vec3 c;"
                        "void main() { gl_FragColor = vec4("
                        "  tan(c.x) * 0.5 + asin(c.y * 0.9) * 0.3,"
                        "  acos(c.z * 0.9) * 0.3 + atan(c.x, c.y + 0.1) * 0.1,"
                        "  exp2(c.x) * 0.2 + log(c.y + 1.0) * 0.3 + log2(c.z + 1.0) * 0.2,"
                        "  1.0); }");
    triangle_vbo();
    GLuint progs[] = {vp, fp};
    const char *tags[] = {"vertex built-ins", "fragment built-ins"};
    for (int i = 0; i < 2; i++) {
        glClearColor(0.1f, 0.2f, 0.3f, 1.0f);
        glClear(GL_COLOR_BUFFER_BIT);
        glUseProgram(progs[i]);
        glDrawArrays(GL_TRIANGLES, 0, 3);
        dump_pixels(tags[i]);
    }
    print_error("end");
    teardown();
    return 0;
}
