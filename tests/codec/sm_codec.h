/*
 * sm_codec.h - the checksummed message format that verifies exactly-once
 * delivery: one codec for the stress test (tests/integration/test_stress.c)
 * and the benchmark (bench/).
 *
 * Home: tests/codec, plain C11 with no dependency but libc, so that both
 * users compile sm_codec.c into their own binary and it depends on neither
 * (tests -> codec <- bench; nothing here includes test or bench code).
 *
 * Format: a message of len >= SMC_TRAILER_SIZE bytes is the caller's body
 * (any bytes) followed by a trailer in host byte order: magic, len (the
 * whole message), producer, group, seq, sent_ns and an FNV-1a 64-bit
 * checksum of every byte before the checksum (body included).  A
 * truncated, padded, shifted or bit-flipped message fails smc_open().
 *
 * Thread safety: pure functions on caller-owned buffers.
 */
#ifndef SM_CODEC_H
#define SM_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMC_TRAILER_SIZE 40u

struct smc_fields {
	uint32_t producer;
	uint32_t group;
	uint64_t seq;
	uint64_t sent_ns;
};

enum smc_status {
	SMC_OK,
	SMC_TOO_SHORT,    /* len < SMC_TRAILER_SIZE */
	SMC_BAD_MAGIC,
	SMC_BAD_LENGTH,   /* the trailer's len is not the length read */
	SMC_BAD_CHECKSUM,
};

/* Writes the trailer into the last SMC_TRAILER_SIZE bytes of msg[0..len),
 * after the body the caller already wrote; len >= SMC_TRAILER_SIZE. */
void smc_seal(void *msg, size_t len, const struct smc_fields *f);

/* Checks msg[0..len).  *f receives the trailer's fields whenever
 * len >= SMC_TRAILER_SIZE (for diagnostics), trusted only on SMC_OK. */
enum smc_status smc_open(const void *msg, size_t len, struct smc_fields *f);

/* "ok", "too short", "bad magic", "bad length", "bad checksum". */
const char *smc_status_text(enum smc_status s);

#ifdef __cplusplus
}
#endif

#endif
