/* Vertex array objects (OES_vertex_array_object, carried): two objects
 * with their own client arrays and element buffers, drawn alternately; the
 * front-end keeps its shadow of vertex arrays per object. dEQP-GLES2's
 * clip_control cases use them. */
#include "harness.h"
#include <GLES2/gl2ext.h>

int main(void) {
    setup();
    const char *ext = (const char *)glGetString(GL_EXTENSIONS);
    PFNGLGENVERTEXARRAYSOESPROC gen = (PFNGLGENVERTEXARRAYSOESPROC)eglGetProcAddress("glGenVertexArraysOES");
    PFNGLBINDVERTEXARRAYOESPROC bind = (PFNGLBINDVERTEXARRAYOESPROC)eglGetProcAddress("glBindVertexArrayOES");
    PFNGLDELETEVERTEXARRAYSOESPROC del =
        (PFNGLDELETEVERTEXARRAYSOESPROC)eglGetProcAddress("glDeleteVertexArraysOES");
    PFNGLISVERTEXARRAYOESPROC is = (PFNGLISVERTEXARRAYOESPROC)eglGetProcAddress("glIsVertexArrayOES");
    if (!ext || !strstr(ext, "GL_OES_vertex_array_object") || !gen || !bind || !del || !is) {
        printf("no GL_OES_vertex_array_object\n");
        return 0;
    }
    glUseProgram(program(COLOR_VS, COLOR_FS));
    GLuint va[2];
    gen(2, va);
    printf("is vertex array: %d %d %d\n", is(va[0]), is(va[1]), is(va[1] + 100));
    /* Object 0: the client-array grid, indices in a buffer (two quads). */
    bind(va[0]);
    grid_client_arrays();
    static const GLubyte idx0[] = {0, 1, 4, 0, 4, 3, 4, 5, 8, 4, 8, 7};
    GLuint eab[2];
    glGenBuffers(2, eab);
    glBindBuffer(GL_ELEMENT_ARRAY_BUFFER, eab[0]);
    glBufferData(GL_ELEMENT_ARRAY_BUFFER, sizeof idx0, idx0, GL_STATIC_DRAW);
    /* Object 1: the triangle from a vertex buffer, other indices. */
    bind(va[1]);
    triangle_vbo();
    static const GLushort idx1[] = {2, 1, 0};
    glBindBuffer(GL_ELEMENT_ARRAY_BUFFER, eab[1]);
    glBufferData(GL_ELEMENT_ARRAY_BUFFER, sizeof idx1, idx1, GL_STATIC_DRAW);
    GLint b = -1;
    glGetIntegerv(GL_VERTEX_ARRAY_BINDING_OES, &b);
    printf("bound is the second: %d\n", b == (GLint)va[1]);
    for (int round = 0; round < 2; round++) {
        glClearColor(0, 0, 0, 1);
        glClear(GL_COLOR_BUFFER_BIT);
        bind(va[0]);
        glGetIntegerv(GL_ELEMENT_ARRAY_BUFFER_BINDING, &b);
        printf("first's element buffer: %d\n", b == (GLint)eab[0]);
        glDrawElements(GL_TRIANGLES, 12, GL_UNSIGNED_BYTE, 0);
        bind(va[1]);
        glDrawElements(GL_TRIANGLES, 3, GL_UNSIGNED_SHORT, 0);
        dump_pixels(round ? "second round" : "both objects");
    }
    /* The default object has neither. */
    bind(0);
    glGetIntegerv(GL_ELEMENT_ARRAY_BUFFER_BINDING, &b);
    printf("default object's element buffer: %d\n", b);
    bind(va[0]);
    del(1, &va[0]);
    glGetIntegerv(GL_VERTEX_ARRAY_BINDING_OES, &b);
    printf("after deleting the bound one: binding %d, is %d\n", b, is(va[0]));
    bind(va[0]);
    print_error("bind a deleted one");
    del(1, &va[1]);
    print_error("end");
    teardown();
    return 0;
}
