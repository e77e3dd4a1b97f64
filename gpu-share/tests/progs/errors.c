/* GL error cases: every one must report the same error as natively. */
#include "harness.h"

int main(void) {
    setup();
    print_error("start");
    glBindBuffer(0x1234, 0);
    print_error("bind bad target");
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, -1, 4, 0, GL_RGBA, GL_UNSIGNED_BYTE, NULL);
    print_error("negative width");
    glUseProgram(12345);
    print_error("unknown program");
    glDrawArrays(GL_TRIANGLES, 0, -1);
    print_error("negative count");
    glEnable(0x9999);
    print_error("bad enable");
    glGenBuffers(-1, NULL);
    print_error("gen negative");
    glActiveTexture(GL_TEXTURE0 + 1000);
    print_error("texture unit");
    glBufferData(GL_ARRAY_BUFFER, 16, NULL, GL_STATIC_DRAW);
    print_error("buffer data with no buffer bound");
    glVertexAttribPointer(99, 2, GL_FLOAT, GL_FALSE, 0, NULL);
    print_error("attrib index");
    glClear(GL_COLOR_BUFFER_BIT);
    glClear(0x80000000);
    print_error("clear bad bits");
    glGetError();
    GLuint s = glCreateShader(GL_FRAGMENT_SHADER);
    const char *bad = "void main() { this is not glsl }";
    glShaderSource(s, 1, &bad, NULL);
    glCompileShader(s);
    GLint ok = 1, len = 0;
    glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
    glGetShaderiv(s, GL_INFO_LOG_LENGTH, &len);
    printf("bad shader compiles: %d, has log: %d\n", ok, len > 1);
    printf("is shader %d, is program %d\n", glIsShader(s), glIsProgram(s));
    glDeleteShader(s);
    print_error("after delete");
    GLint bad_get;
    glGetIntegerv(0x4321, &bad_get);
    print_error("bad get");
    printf("is enabled blend %d\n", glIsEnabled(GL_BLEND));
    glEnable(GL_BLEND);
    printf("is enabled blend %d\n", glIsEnabled(GL_BLEND));
    glBindFramebuffer(GL_FRAMEBUFFER, 77);
    printf("fresh fbo status 0x%04x\n", glCheckFramebufferStatus(GL_FRAMEBUFFER));
    print_error("end");
    teardown();
    return 0;
}
