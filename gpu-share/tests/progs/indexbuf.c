/* Indices in a buffer that was filled through GL_ARRAY_BUFFER, vertices in
 * client arrays (dEQP buffer.write.use.index_array.array): the front-end
 * must still know how many vertices the indices reach and send them, or
 * the driver reads vertex data from address 0 in the server. */
#include "harness.h"

int main(void) {
    setup();
    glUseProgram(program(COLOR_VS, COLOR_FS));
    static const GLushort idx[] = {0, 1, 4, 0, 4, 3, 4, 5, 8, 4, 8, 7};
    GLuint buf;
    glGenBuffers(1, &buf);
    /* Filled as vertex data, then used as the element buffer. */
    glBindBuffer(GL_ARRAY_BUFFER, buf);
    glBufferData(GL_ARRAY_BUFFER, sizeof idx, NULL, GL_STATIC_DRAW);
    glBufferSubData(GL_ARRAY_BUFFER, 0, sizeof idx, idx);
    glBindBuffer(GL_ARRAY_BUFFER, 0);
    glBindBuffer(GL_ELEMENT_ARRAY_BUFFER, buf);
    grid_client_arrays();
    glClearColor(0, 0, 0, 1);
    glClear(GL_COLOR_BUFFER_BIT);
    glDrawElements(GL_TRIANGLES, 12, GL_UNSIGNED_SHORT, 0);
    dump_pixels("indices from a buffer filled as vertex data");
    print_error("end");
    teardown();
    return 0;
}
