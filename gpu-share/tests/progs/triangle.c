/* A coloured triangle from a vertex buffer. */
#include "harness.h"

int main(void) {
    setup();
    GLuint p = program(COLOR_VS, COLOR_FS);
    GLuint vbo = triangle_vbo();
    glClearColor(0.1f, 0.2f, 0.3f, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
    glUseProgram(p);
    glDrawArrays(GL_TRIANGLES, 0, 3);
    dump_pixels("triangle");
    GLint bound = -1;
    glGetIntegerv(GL_ARRAY_BUFFER_BINDING, &bound);
    printf("array buffer binding is vbo: %d\n", bound == (GLint)vbo);
    glGetIntegerv(GL_CURRENT_PROGRAM, &bound);
    printf("current program is p: %d\n", bound == (GLint)p);
    print_error("end");
    teardown();
    return 0;
}
