/* Render to a texture through a framebuffer object, then draw that texture. */
#include "harness.h"

int main(void) {
    setup();
    GLuint fb, tex, rb;
    glGenTextures(1, &tex);
    glBindTexture(GL_TEXTURE_2D, tex);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, 32, 32, 0, GL_RGBA, GL_UNSIGNED_BYTE, NULL);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glGenFramebuffers(1, &fb);
    glBindFramebuffer(GL_FRAMEBUFFER, fb);
    printf("status before attach 0x%04x\n", glCheckFramebufferStatus(GL_FRAMEBUFFER));
    glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, tex, 0);
    glGenRenderbuffers(1, &rb);
    glBindRenderbuffer(GL_RENDERBUFFER, rb);
    glRenderbufferStorage(GL_RENDERBUFFER, GL_DEPTH_COMPONENT16, 32, 32);
    glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_DEPTH_ATTACHMENT, GL_RENDERBUFFER, rb);
    printf("status 0x%04x\n", glCheckFramebufferStatus(GL_FRAMEBUFFER));
    GLint name = -1;
    glGetFramebufferAttachmentParameteriv(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_FRAMEBUFFER_ATTACHMENT_OBJECT_NAME, &name);
    printf("attachment is tex: %d\n", name == (GLint)tex);
    glGetIntegerv(GL_FRAMEBUFFER_BINDING, &name);
    printf("binding is fb: %d\n", name == (GLint)fb);
    glViewport(0, 0, 32, 32);
    glEnable(GL_DEPTH_TEST);
    glClearColor(1, 0.5f, 0, 1);
    glClear(GL_COLOR_BUFFER_BIT | GL_DEPTH_BUFFER_BIT);
    GLuint p = program("attribute vec4 pos; void main() { gl_Position = pos; }",
                       "precision mediump float; uniform vec4 col; void main() { gl_FragColor = col; }");
    glUseProgram(p);
    glUniform4f(glGetUniformLocation(p, "col"), 0, 0.25f, 1, 1);
    static const GLfloat tri[] = {-1, -1, 1, -1, 0, 1};
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, tri);
    glEnableVertexAttribArray(0);
    glDrawArrays(GL_TRIANGLES, 0, 3);
    GLfloat got[4] = {0};
    glGetUniformfv(p, glGetUniformLocation(p, "col"), got);
    printf("uniform back %.2f %.2f %.2f %.2f\n", got[0], got[1], got[2], got[3]);
    /* Now sample the texture on the pbuffer. */
    glBindFramebuffer(GL_FRAMEBUFFER, 0);
    glDisable(GL_DEPTH_TEST);
    glViewport(0, 0, W, H);
    GLuint q = program("attribute vec4 pos; varying vec2 t; void main() { gl_Position = pos; t = pos.xy * 0.5 + 0.5; }",
                       "precision mediump float; varying vec2 t; uniform sampler2D s;"
                       "void main() { gl_FragColor = texture2D(s, t); }");
    glUseProgram(q);
    static const GLfloat quad[] = {-1, -1, 1, -1, -1, 1, 1, 1};
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, quad);
    glClear(GL_COLOR_BUFFER_BIT);
    glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
    dump_pixels("fbo");
    glDeleteFramebuffers(1, &fb);
    printf("is framebuffer after delete: %d\n", glIsFramebuffer(fb));
    printf("is texture: %d\n", glIsTexture(tex));
    print_error("end");
    teardown();
    return 0;
}
