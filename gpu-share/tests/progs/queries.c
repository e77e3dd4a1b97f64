/* State and error queries whose answers depend on what the server knows
 * (dEQP fbo.api, state_query.shader, negative_api.shader and
 * shaders.builtin_variable cases that differed through gpu-share). */
#include "harness.h"
#include <GLES2/gl2ext.h>

static void attachment(const char *what) {
    GLint type = -1;
    glGetFramebufferAttachmentParameteriv(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0,
                                          GL_FRAMEBUFFER_ATTACHMENT_OBJECT_TYPE, &type);
    printf("%s: type 0x%x, error 0x%x\n", what, type, glGetError());
}

int main(void) {
    setup();
    /* 1. An object deleted while attached to a framebuffer that is not
     *    bound stays attached, under its old name. */
    GLuint fbo, rbo, tex;
    glGenFramebuffers(1, &fbo);
    glGenRenderbuffers(1, &rbo);
    glBindFramebuffer(GL_FRAMEBUFFER, fbo);
    glBindRenderbuffer(GL_RENDERBUFFER, rbo);
    glRenderbufferStorage(GL_RENDERBUFFER, GL_RGBA4, 16, 16);
    glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, rbo);
    glBindFramebuffer(GL_FRAMEBUFFER, 0);
    glDeleteRenderbuffers(1, &rbo);
    glBindFramebuffer(GL_FRAMEBUFFER, fbo);
    attachment("renderbuffer deleted while its framebuffer was not bound");
    GLint rname = -1;
    glGetFramebufferAttachmentParameteriv(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0,
                                          GL_FRAMEBUFFER_ATTACHMENT_OBJECT_NAME, &rname);
    printf("  its name is the old one: %d\n", rname == (GLint)rbo);
    glGenTextures(1, &tex);
    glBindTexture(GL_TEXTURE_2D, tex);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, 16, 16, 0, GL_RGBA, GL_UNSIGNED_BYTE, NULL);
    glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, tex, 0);
    glBindFramebuffer(GL_FRAMEBUFFER, 0);
    glDeleteTextures(1, &tex);
    glBindFramebuffer(GL_FRAMEBUFFER, fbo);
    GLint name = -1;
    glGetFramebufferAttachmentParameteriv(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0,
                                          GL_FRAMEBUFFER_ATTACHMENT_OBJECT_NAME, &name);
    printf("texture deleted while attached: name is the old one: %d\n", name == (GLint)tex);
    glBindFramebuffer(GL_FRAMEBUFFER, 0);
    glDeleteFramebuffers(1, &fbo);

    /* 2. The format of a client-memory vertex array, as queried. */
    static const GLfloat data[16];
    glBindBuffer(GL_ARRAY_BUFFER, 0);
    glVertexAttribPointer(1, 3, GL_SHORT, GL_TRUE, 12, data);
    GLint v[4] = {0};
    glGetVertexAttribiv(1, GL_VERTEX_ATTRIB_ARRAY_SIZE, v);
    glGetVertexAttribiv(1, GL_VERTEX_ATTRIB_ARRAY_TYPE, v + 1);
    glGetVertexAttribiv(1, GL_VERTEX_ATTRIB_ARRAY_STRIDE, v + 2);
    glGetVertexAttribiv(1, GL_VERTEX_ATTRIB_ARRAY_NORMALIZED, v + 3);
    printf("client array format: size %d type 0x%x stride %d normalized %d\n", v[0], v[1], v[2],
           v[3]);
    glVertexAttribPointer(2, 4, GL_FLOAT, GL_FALSE, 0, NULL);
    glGetVertexAttribiv(2, GL_VERTEX_ATTRIB_ARRAY_SIZE, v);
    printf("NULL client array: size %d\n", v[0]);
    print_error("attrib queries");

    /* 3. glShaderSource and glShaderBinary errors, in the driver's order
     *    of checks. */
    GLuint sh = glCreateShader(GL_VERTEX_SHADER), prog = glCreateProgram();
    glShaderSource(prog, 0, NULL, NULL);
    print_error("shader source on a program object");
    glShaderSource(sh, -1, NULL, NULL);
    print_error("shader source, negative count");
    glShaderSource(12345, 0, NULL, NULL);
    print_error("shader source, unknown name");
    /* NULL outputs where the call would write: the driver reports the
     * argument error (and the session goes on). */
    glGetActiveAttrib(sh, 0, 0, NULL, NULL, NULL, NULL);
    print_error("active attrib of a shader object, NULL outputs");
    glGetActiveUniform(12345, 0, 0, NULL, NULL, NULL, NULL);
    print_error("active uniform of an unknown name, NULL outputs");
    GLuint nb;
    glGenBuffers(1, &nb);
    glBindBuffer(GL_ARRAY_BUFFER, nb);
    glBufferData(GL_ARRAY_BUFFER, 10, NULL, GL_STATIC_DRAW);
    glBufferSubData(GL_ARRAY_BUFFER, 15, 10, NULL);
    print_error("buffer sub data past the end, NULL data");
    glBufferSubData(GL_ARRAY_BUFFER, -1, 1, NULL);
    print_error("buffer sub data at a negative offset, NULL data");
    glBindBuffer(GL_ARRAY_BUFFER, 0);
    glDeleteBuffers(1, &nb);
    GLuint shaders[2] = {sh, glCreateShader(GL_FRAGMENT_SHADER)};
    glShaderBinary(1, shaders, 0xffffffff, NULL, 0);
    print_error("shader binary, bad format");
    glShaderBinary(2, shaders, 0xffffffff, NULL, 0);
    print_error("shader binary, two shaders, bad format");

    /* 4. gl_MaxDrawBuffers agrees with the extension string and the
     *    MAX_DRAW_BUFFERS query, as dEQP expects. */
    const char *ext = (const char *)glGetString(GL_EXTENSIONS);
    int has = ext && strstr(ext, "GL_EXT_draw_buffers") != NULL;
    GLint max = 1;
    if (has) glGetIntegerv(GL_MAX_DRAW_BUFFERS_EXT, &max);
    char vs[256];
    snprintf(vs, sizeof vs,
             "attribute vec4 pos; varying vec4 c; void main() { gl_Position = pos;"
             " c = gl_MaxDrawBuffers == %d ? vec4(0,1,0,1) : vec4(1,0,0,1); }",
             (int)max);
    glUseProgram(program(vs, "precision mediump float; varying vec4 c;"
                             " void main() { gl_FragColor = c; }"));
    static const GLfloat tri[] = {-1, -1, 3, -1, -1, 3};
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, tri);
    glEnableVertexAttribArray(0);
    glClearColor(0, 0, 0, 1);
    glClear(GL_COLOR_BUFFER_BIT);
    glDrawArrays(GL_TRIANGLES, 0, 3);
    GLubyte px[4] = {0};
    glReadPixels(W / 2, H / 2, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE, px);
    printf("gl_MaxDrawBuffers as expected (EXT_draw_buffers %d): %s\n", has,
           px[1] == 255 && px[0] == 0 ? "yes" : "no");

    /* 5. EXT_clip_control, carried: its state as set and queried. */
    if (ext && strstr(ext, "GL_EXT_clip_control")) {
        PFNGLCLIPCONTROLEXTPROC cc = (PFNGLCLIPCONTROLEXTPROC)eglGetProcAddress("glClipControlEXT");
        GLint o = 0, d = 0;
        if (cc) cc(GL_UPPER_LEFT_EXT, GL_ZERO_TO_ONE_EXT);
        glGetIntegerv(GL_CLIP_ORIGIN_EXT, &o);
        glGetIntegerv(GL_CLIP_DEPTH_MODE_EXT, &d);
        printf("clip control: entry point %d, origin 0x%x, depth mode 0x%x\n", cc != NULL, o, d);
        if (cc) cc(0x1234, GL_ZERO_TO_ONE_EXT);
        print_error("clip control, bad origin");
    } else {
        printf("no GL_EXT_clip_control\n");
    }
    print_error("end");
    teardown();
    return 0;
}
