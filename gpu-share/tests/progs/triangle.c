/* A coloured triangle from a vertex buffer. */
#include "harness.h"

int main(void) {
    setup();
    GLuint p = program("attribute vec4 pos; attribute vec3 attr; varying vec3 c;"
                       "void main() { gl_Position = pos; c = attr; }",
                       "precision mediump float; varying vec3 c;"
                       "void main() { gl_FragColor = vec4(c, 1.0); }");
    static const GLfloat v[] = {-0.8f, -0.8f, 1, 0, 0, 0.8f, -0.8f, 0, 1, 0, 0.0f, 0.8f, 0, 0, 1};
    GLuint vbo;
    glGenBuffers(1, &vbo);
    glBindBuffer(GL_ARRAY_BUFFER, vbo);
    glBufferData(GL_ARRAY_BUFFER, sizeof v, v, GL_STATIC_DRAW);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 5 * sizeof(GLfloat), (void *)0);
    glVertexAttribPointer(1, 3, GL_FLOAT, GL_FALSE, 5 * sizeof(GLfloat), (void *)(2 * sizeof(GLfloat)));
    glEnableVertexAttribArray(0);
    glEnableVertexAttribArray(1);
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
