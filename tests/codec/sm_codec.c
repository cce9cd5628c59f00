/* sm_codec.c - see sm_codec.h. */
#include "sm_codec.h"

#include <string.h>

#define SMC_MAGIC 0x534D5347u /* "SMSG" */

struct smc_trailer {
	uint32_t magic, len, producer, group;
	uint64_t seq, sent_ns, sum;
};

_Static_assert(sizeof(struct smc_trailer) == SMC_TRAILER_SIZE, "trailer layout");

/* FNV-1a 64 of everything but the checksum itself. */
static uint64_t checksum(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len - sizeof(uint64_t); i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void smc_seal(void *msg, size_t len, const struct smc_fields *f)
{
	unsigned char *p = msg;
	struct smc_trailer t = { SMC_MAGIC, (uint32_t)len, f->producer, f->group,
				 f->seq, f->sent_ns, 0 };

	memcpy(p + len - sizeof t, &t, sizeof t);
	t.sum = checksum(p, len);
	memcpy(p + len - sizeof t.sum, &t.sum, sizeof t.sum);
}

enum smc_status smc_open(const void *msg, size_t len, struct smc_fields *f)
{
	const unsigned char *p = msg;
	struct smc_trailer t;

	memset(f, 0, sizeof *f);
	if (len < sizeof t)
		return SMC_TOO_SHORT;
	memcpy(&t, p + len - sizeof t, sizeof t);
	*f = (struct smc_fields){ t.producer, t.group, t.seq, t.sent_ns };
	if (t.magic != SMC_MAGIC)
		return SMC_BAD_MAGIC;
	if (t.len != len)
		return SMC_BAD_LENGTH;
	return t.sum == checksum(p, len) ? SMC_OK : SMC_BAD_CHECKSUM;
}

const char *smc_status_text(enum smc_status s)
{
	static const char *const text[] = { "ok", "too short", "bad magic",
					    "bad length", "bad checksum" };
	return (unsigned)s < sizeof text / sizeof text[0] ? text[s] : "?";
}
