/* Client-side vertex arrays drawn with indices from an element buffer,
 * including a glBufferSubData update and a non-zero offset: the front-end
 * must send exactly the vertices the indices reach. */
#include "harness.h"

int main(void) {
    setup();
    glUseProgram(program(COLOR_VS, COLOR_FS));
    /* A 3x3 grid of vertices; the indices pick sub-quads of it. */
    grid_client_arrays();
    static const GLubyte idx[] = {0, 1, 4, 0, 4, 3, 4, 5, 8, 4, 8, 7};
    GLuint eab;
    glGenBuffers(1, &eab);
    glBindBuffer(GL_ELEMENT_ARRAY_BUFFER, eab);
    glBufferData(GL_ELEMENT_ARRAY_BUFFER, sizeof idx, idx, GL_STATIC_DRAW);
    glClearColor(0, 0, 0, 1);
    glClear(GL_COLOR_BUFFER_BIT);
    glDrawElements(GL_TRIANGLES, 12, GL_UNSIGNED_BYTE, 0);
    dump_pixels("two quads");
    /* Second quad replaced by the top-left one, drawn from offset 6. */
    static const GLubyte upd[] = {3, 4, 7, 3, 7, 6};
    glBufferSubData(GL_ELEMENT_ARRAY_BUFFER, 6, sizeof upd, upd);
    glClear(GL_COLOR_BUFFER_BIT);
    glDrawElements(GL_TRIANGLES, 6, GL_UNSIGNED_BYTE, (void *)6);
    dump_pixels("offset quad");
    print_error("end");
    teardown();
    return 0;
}
