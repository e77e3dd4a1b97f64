/* A textured quad drawn from client-side arrays and client-side indices. */
#include "harness.h"

int main(void) {
    setup();
    GLuint p = program("attribute vec4 pos; attribute vec2 attr; varying vec2 t;"
                       "void main() { gl_Position = pos; t = attr; }",
                       "precision mediump float; varying vec2 t; uniform sampler2D s;"
                       "void main() { gl_FragColor = texture2D(s, t); }");
    unsigned char tex[8 * 8 * 3];
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            unsigned char *t = tex + (y * 8 + x) * 3;
            t[0] = (x ^ y) & 1 ? 255 : 20;
            t[1] = x * 32;
            t[2] = y * 32;
        }
    GLuint to;
    glGenTextures(1, &to);
    glBindTexture(GL_TEXTURE_2D, to);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 1); /* 8*3-byte rows: tests row padding rules */
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGB, 8, 8, 0, GL_RGB, GL_UNSIGNED_BYTE, tex);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    static const GLfloat pos[] = {-0.9f, -0.9f, 0.9f, -0.9f, 0.9f, 0.9f, -0.9f, 0.9f};
    static const GLfloat uv[] = {0, 0, 1, 0, 1, 1, 0, 1};
    static const GLushort idx[] = {0, 1, 2, 0, 2, 3};
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, pos);
    glVertexAttribPointer(1, 2, GL_FLOAT, GL_FALSE, 0, uv);
    glEnableVertexAttribArray(0);
    glEnableVertexAttribArray(1);
    glUseProgram(p);
    glUniform1i(glGetUniformLocation(p, "s"), 0);
    glClearColor(0, 0, 0, 1);
    glClear(GL_COLOR_BUFFER_BIT);
    glDrawElements(GL_TRIANGLES, 6, GL_UNSIGNED_SHORT, idx);
    dump_pixels("texquad");
    void *ptr = NULL;
    glGetVertexAttribPointerv(1, GL_VERTEX_ATTRIB_ARRAY_POINTER, &ptr);
    printf("attrib pointer kept: %d\n", ptr == (void *)uv);
    GLint v = 0;
    glGetIntegerv(GL_UNPACK_ALIGNMENT, &v);
    printf("unpack alignment %d\n", v);
    glGetIntegerv(GL_TEXTURE_BINDING_2D, &v);
    printf("texture binding is to: %d\n", v == (GLint)to);
    print_error("end");
    teardown();
    return 0;
}
