/* The IVI load programs' report (ivi-flood, ivi-busy): every DUTY_EVERY
 * frames, one line
 *     NAME: frames N period mean P ms duty D
 * with the mean time per frame and this process's CPU time over the wall
 * time, both over those frames. */
#include <stdio.h>
#include <time.h>

#define DUTY_EVERY 30

static double duty_secs(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

struct duty {
    double wall, cpu;
};

static void duty_start(struct duty *d) {
    d->wall = duty_secs(CLOCK_MONOTONIC);
    d->cpu = duty_secs(CLOCK_PROCESS_CPUTIME_ID);
}

/* After `frames` frames in all. */
static void duty_frame(struct duty *d, const char *name, long frames) {
    if (frames % DUTY_EVERY) return;
    double w = duty_secs(CLOCK_MONOTONIC), c = duty_secs(CLOCK_PROCESS_CPUTIME_ID);
    printf("%s: frames %ld period mean %.1f ms duty %.3f\n", name, frames,
           (w - d->wall) * 1e3 / DUTY_EVERY, (c - d->cpu) / (w - d->wall));
    fflush(stdout);
    d->wall = w;
    d->cpu = c;
}
