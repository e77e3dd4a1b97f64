/* The IVI's CPU load without the GPU, for the cockpit's cluster-first
 * check (docs/cockpit.md): it burns the same share of a CPU as ivi-flood
 * measured for itself, and makes no GL or EGL call at all. The cluster's
 * frame period under ivi-flood against its period under ivi-busy then
 * shows what the GPU flood costs the cluster, with the CPU load (and so
 * the host's or QEMU's scheduling) the same in both.
 *
 *   ivi-busy --duty D [--period-ms P] [--frames N]
 *   ivi-busy --duty-file FILE [--period-ms P] [--frames N]
 *
 * --duty: the fraction of CPU time to burn, 0 to 1; --duty-file: take the
 * last "duty D" that ivi-flood printed into FILE. Each period (default
 * 20 ms) it spins until its CPU time reached D x P, then sleeps until the
 * period ends. Every 30 periods it prints, as ivi-flood does,
 *
 *   ivi-busy: frames 30 period mean 20.0 ms duty 0.411
 *
 * with the duty it really got (lower when the CPU was taken from it). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "duty.h"

static void die(const char *what, const char *v) {
    fprintf(stderr, "ivi-busy: %s%s\n", what, v);
    exit(2);
}

static double number(const char *v, double lo, double hi, const char *what) {
    char *end;
    double d = strtod(v, &end);
    if (*v == 0 || *end != 0 || !(d >= lo && d <= hi)) die(what, v);
    return d;
}

/* The last "duty D" in FILE (ivi-flood's output). */
static double duty_from(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read ", path);
    char line[256];
    double d = -1;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, " duty ");
        if (p) d = number(strtok((char *)p + 6, " \n"), 0, 1, "bad duty in the file: ");
    }
    fclose(f);
    if (d < 0) die("no 'duty' line in ", path);
    return d;
}

int main(int argc, char **argv) {
    double duty = -1, period = 0.020;
    long frames = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--duty") && i + 1 < argc) duty = number(argv[++i], 0, 1, "--duty must be from 0 to 1, not ");
        else if (!strcmp(argv[i], "--duty-file") && i + 1 < argc) duty = duty_from(argv[++i]);
        else if (!strcmp(argv[i], "--period-ms") && i + 1 < argc) period = number(argv[++i], 1, 10000, "--period-ms must be from 1 to 10000, not ") / 1e3;
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc) frames = (long)number(argv[++i], 1, 1e9, "--frames must be from 1, not ");
        else die("bad argument ", argv[i]);
    }
    if (duty < 0) die("give --duty or --duty-file", "");

    struct duty d;
    duty_start(&d);
    double start = d.wall;
    volatile unsigned long sink = 0;
    for (long n = 0; frames < 0 || n < frames; n++) {
        double end = start + period, burn = duty_secs(CLOCK_PROCESS_CPUTIME_ID) + duty * period;
        /* Spin for our share, but never past the period (the CPU may be
         * taken from us: then the measured duty says so). */
        while (duty_secs(CLOCK_PROCESS_CPUTIME_ID) < burn && duty_secs(CLOCK_MONOTONIC) < end)
            for (int k = 0; k < 1000; k++) sink += (unsigned long)k * 2654435761u;
        double now = duty_secs(CLOCK_MONOTONIC);
        if (now < end) {
            struct timespec ts = {(time_t)end, (long)((end - (double)(time_t)end) * 1e9)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            start = end;
        } else {
            start = now; /* late: the next period starts now */
        }
        duty_frame(&d, "ivi-busy", n + 1);
    }
    return 0;
}
