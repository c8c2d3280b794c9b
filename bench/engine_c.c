/*
 * bench/engine_c.c - the fax engine benchmark's baseline: the same calls as
 * faxline.fax.line.run_call, driven straight from C, to measure SpanDSP's own cost.
 *
 * Usage: engine_c audio|t38 TX.tif RX.tif [pcmu|pcma]
 * Prints one line: "<cpu seconds> <simulated seconds> <sender code> <pages received>".
 *
 * Like the Python line, each step moves 20 ms (160 samples) each way: audio goes through
 * G.711 (encoded and decoded), T.38 packets are handed across with sequence numbers
 * assigned here, one delivery per copy requested. Built by bench/engine at run time:
 *   gcc -O2 engine_c.c -o engine_c -lspandsp -ltiff
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tiffio.h>
#include <spandsp.h>

#define BLOCK 160
#define MAX_SECONDS 600
#define CLEARING_BLOCKS 250 /* 5 s, as the Python line */
#define QUEUE_LEN 512

typedef struct
{
    int finished;
    int code;
} side_t;

typedef struct
{
    uint8_t data[QUEUE_LEN][256];
    int len[QUEUE_LEN];
    int copies[QUEUE_LEN];
    uint16_t seq[QUEUE_LEN];
    int count;
    uint16_t next_seq;
} packet_queue_t;

static void phase_e(t30_state_t *s, void *user_data, int code)
{
    side_t *side = (side_t *) user_data;
    (void) s;
    side->finished = 1;
    side->code = code;
}

static int tx_packet(t38_core_state_t *s, void *user_data, const uint8_t *buf, int len, int count)
{
    packet_queue_t *q = (packet_queue_t *) user_data;
    (void) s;
    if (q->count >= QUEUE_LEN || len > 256)
        return -1;
    memcpy(q->data[q->count], buf, len);
    q->len[q->count] = len;
    q->copies[q->count] = count < 1 ? 1 : count;
    q->seq[q->count] = q->next_seq++;
    q->count++;
    return 0;
}

static void configure(t30_state_t *t30, side_t *side, const char *file, int sending)
{
    t30_set_tx_ident(t30, "");
    if (sending)
        t30_set_tx_file(t30, file, -1, -1);
    else
        t30_set_rx_file(t30, file, -1);
    t30_set_ecm_capability(t30, 1);
    t30_set_supported_compressions(t30, T30_SUPPORT_T4_1D_COMPRESSION
                                        | T30_SUPPORT_T4_2D_COMPRESSION
                                        | T30_SUPPORT_T6_COMPRESSION);
    t30_set_supported_resolutions(t30, T30_SUPPORT_STANDARD_RESOLUTION
                                       | T30_SUPPORT_FINE_RESOLUTION
                                       | T30_SUPPORT_R8_RESOLUTION);
    t30_set_phase_e_handler(t30, phase_e, side);
}

static int call_over(side_t *a, side_t *b, int blocks, int *first_end)
{
    if (*first_end < 0 && (a->finished || b->finished))
        *first_end = blocks;
    if (a->finished && b->finished)
        return 1;
    if (*first_end >= 0 && blocks - *first_end >= CLEARING_BLOCKS)
        return 1;
    return blocks >= MAX_SECONDS * 50;
}

static void carry_audio(g711_state_t *enc, g711_state_t *dec, const int16_t *in, fax_state_t *to)
{
    uint8_t coded[BLOCK];
    int16_t decoded[BLOCK];

    g711_encode(enc, coded, in, BLOCK);
    g711_decode(dec, decoded, coded, BLOCK);
    fax_rx(to, decoded, BLOCK);
}

static int run_audio(const char *tx_file, const char *rx_file, int mode, side_t *tx, side_t *rx)
{
    fax_state_t *a = fax_init(NULL, 1);
    fax_state_t *b = fax_init(NULL, 0);
    g711_state_t *enc = g711_init(NULL, mode);
    g711_state_t *dec = g711_init(NULL, mode);
    int16_t fwd[BLOCK];
    int16_t bwd[BLOCK];
    int blocks = 0;
    int first_end = -1;

    fax_set_transmit_on_idle(a, 1);
    fax_set_transmit_on_idle(b, 1);
    configure(fax_get_t30_state(a), tx, tx_file, 1);
    configure(fax_get_t30_state(b), rx, rx_file, 0);
    do
    {
        memset(fwd, 0, sizeof(fwd));
        memset(bwd, 0, sizeof(bwd));
        fax_tx(a, fwd, BLOCK);
        fax_tx(b, bwd, BLOCK);
        carry_audio(enc, dec, fwd, b);
        carry_audio(enc, dec, bwd, a);
        blocks++;
    }
    while (!call_over(tx, rx, blocks, &first_end));
    if (!tx->finished)
        t30_terminate(fax_get_t30_state(a));
    if (!rx->finished)
        t30_terminate(fax_get_t30_state(b));
    fax_free(a);
    fax_free(b);
    g711_free(enc);
    g711_free(dec);
    return blocks;
}

static void deliver(packet_queue_t *q, t38_terminal_state_t *to)
{
    t38_core_state_t *core = t38_terminal_get_t38_core_state(to);
    int i;
    int copy;

    for (i = 0; i < q->count; i++)
    {
        for (copy = 0; copy < q->copies[i]; copy++)
            t38_core_rx_ifp_packet(core, q->data[i], q->len[i], q->seq[i]);
    }
    q->count = 0;
}

static int run_t38(const char *tx_file, const char *rx_file, side_t *tx, side_t *rx)
{
    static packet_queue_t qa;
    static packet_queue_t qb;
    t38_terminal_state_t *a = t38_terminal_init(NULL, 1, tx_packet, &qa);
    t38_terminal_state_t *b = t38_terminal_init(NULL, 0, tx_packet, &qb);
    int blocks = 0;
    int first_end = -1;

    configure(t38_terminal_get_t30_state(a), tx, tx_file, 1);
    configure(t38_terminal_get_t30_state(b), rx, rx_file, 0);
    do
    {
        t38_terminal_send_timeout(a, BLOCK);
        t38_terminal_send_timeout(b, BLOCK);
        deliver(&qa, b);
        deliver(&qb, a);
        blocks++;
    }
    while (!call_over(tx, rx, blocks, &first_end));
    if (!tx->finished)
        t30_terminate(t38_terminal_get_t30_state(a));
    if (!rx->finished)
        t30_terminate(t38_terminal_get_t30_state(b));
    t38_terminal_free(a);
    t38_terminal_free(b);
    return blocks;
}

int main(int argc, char *argv[])
{
    side_t tx = {0, -1};
    side_t rx = {0, -1};
    struct timespec start;
    struct timespec end;
    int blocks;
    int pages;
    double cpu;
    TIFF *tiff;

    if (argc < 4)
    {
        fprintf(stderr, "usage: %s audio|t38 TX.tif RX.tif [pcmu|pcma]\n", argv[0]);
        return 2;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
    if (strcmp(argv[1], "t38") == 0)
        blocks = run_t38(argv[2], argv[3], &tx, &rx);
    else
        blocks = run_audio(argv[2], argv[3],
                           (argc > 4 && strcmp(argv[4], "pcma") == 0) ? G711_ALAW : G711_ULAW,
                           &tx, &rx);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &end);
    cpu = (double) (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    pages = 0;
    if ((tiff = TIFFOpen(argv[3], "r")) != NULL)
    {
        do
            pages++;
        while (TIFFReadDirectory(tiff));
        TIFFClose(tiff);
    }
    printf("%.6f %.2f %d %d\n", cpu, blocks * BLOCK / 8000.0, tx.code, pages);
    return 0;
}
