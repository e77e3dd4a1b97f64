/* glReadPixels with pack alignments and sub-rectangles. */
#include "harness.h"

int main(void) {
    setup();
    glEnable(GL_SCISSOR_TEST);
    for (int i = 0; i < 8; i++) {
        glScissor(i * 8, 0, 8, H);
        glClearColor(i / 8.0f, 1 - i / 8.0f, (i % 3) / 2.0f, 1);
        glClear(GL_COLOR_BUFFER_BIT);
    }
    glDisable(GL_SCISSOR_TEST);
    dump_pixels("stripes");
    static const int aligns[] = {1, 2, 4, 8};
    for (int a = 0; a < 4; a++) {
        unsigned char buf[13 * 7 * 4 + 64];
        memset(buf, 0xAB, sizeof buf);
        glPixelStorei(GL_PACK_ALIGNMENT, aligns[a]);
        glReadPixels(3, 5, 13, 7, GL_RGBA, GL_UNSIGNED_BYTE, buf);
        unsigned h = 2166136261u;
        for (size_t i = 0; i < sizeof buf; i++) h = (h ^ buf[i]) * 16777619u;
        GLint got;
        glGetIntegerv(GL_PACK_ALIGNMENT, &got);
        printf("align %d (reads %d) hash %08x\n", aligns[a], got, h);
    }
    GLint fmt = 0, type = 0;
    glGetIntegerv(GL_IMPLEMENTATION_COLOR_READ_FORMAT, &fmt);
    glGetIntegerv(GL_IMPLEMENTATION_COLOR_READ_TYPE, &type);
    printf("read format 0x%x type 0x%x\n", fmt, type);
    GLint vp[4];
    glGetIntegerv(GL_VIEWPORT, vp);
    printf("viewport %d %d %d %d\n", vp[0], vp[1], vp[2], vp[3]);
    GLfloat cc[4];
    glGetFloatv(GL_COLOR_CLEAR_VALUE, cc);
    printf("clear colour %.3f %.3f %.3f %.3f\n", cc[0], cc[1], cc[2], cc[3]);
    print_error("end");
    teardown();
    return 0;
}
