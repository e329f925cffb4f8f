package pgstore

// statements is the SQL of a Store, built once from its table names.
type statements struct {
	load, delete           string
	upserts                [4]string // by strict, fenced (see upsert)
	loadEpoch, saveEpoch   string
	acquire, renew, expire string
	fence                  string
}

// after is true when the row being inserted (excluded) holds a later
// position than the one in the table (p), in the order of
// durable.Position.Compare: the start "-1" before every real offset, real
// offsets byte-wise (COLLATE "C"), then skip. With orSame, an equal
// position counts too (a plain Save may update Meta).
func after(orSame bool) string {
	skip := `excluded.skip > p.skip`
	if orSame {
		skip = `excluded.skip >= p.skip`
	}
	return `(excluded."offset" = p."offset" AND ` + skip + `)
	OR (excluded."offset" <> p."offset" AND p."offset" = '-1')
	OR (excluded."offset" <> p."offset" AND excluded."offset" <> '-1' AND p."offset" <> '-1'
		AND excluded."offset" COLLATE "C" > p."offset" COLLATE "C")`
}

func newStatements(t tables) statements {
	s := statements{
		load:      `SELECT "offset", skip, meta FROM ` + t.positions + ` WHERE key = $1`,
		delete:    `DELETE FROM ` + t.positions + ` WHERE key = $1`,
		loadEpoch: `SELECT epoch FROM ` + t.epochs + ` WHERE producer_id = $1`,
		saveEpoch: `INSERT INTO ` + t.epochs + ` AS e (producer_id, epoch, updated_at) VALUES ($1, $2, clock_timestamp())
ON CONFLICT (producer_id) DO UPDATE SET epoch = excluded.epoch, updated_at = excluded.updated_at
WHERE excluded.epoch > e.epoch
RETURNING 1`,
		// A new holder takes the key only once the old lease has expired
		// (or was released, which expires it); every acquisition bumps the
		// fencing token.
		acquire: `INSERT INTO ` + t.leases + ` AS l (key, holder, token, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3::float8))
ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, token = l.token + 1, expires_at = excluded.expires_at
WHERE l.expires_at <= clock_timestamp()
RETURNING token`,
		renew: `UPDATE ` + t.leases + ` SET expires_at = clock_timestamp() + make_interval(secs => $3::float8)
WHERE key = $1 AND token = $2 AND expires_at > clock_timestamp()
RETURNING 1`,
		expire: `UPDATE ` + t.leases + ` SET expires_at = clock_timestamp()
WHERE key = $1 AND token = $2 AND expires_at > clock_timestamp()`,
		fence: `SELECT token, expires_at > clock_timestamp() FROM ` + t.leases + ` WHERE key = $1`,
	}
	for i := range s.upserts {
		strict, fenced := i&1 != 0, i&2 != 0
		// Fenced: the row is written only if the lease row still carries
		// the writer's token and has not expired, and FOR SHARE holds the
		// lease row until the transaction ends, so a takeover (an UPDATE of
		// that row) waits for this transaction and cannot slip in between
		// the check and the commit.
		src := `VALUES ($1, $2, $3, $4, clock_timestamp())`
		if fenced {
			src = `SELECT $1, $2, $3::bigint, $4, clock_timestamp() FROM ` + t.leases + `
WHERE key = $5 AND token = $6 AND expires_at > clock_timestamp() FOR SHARE`
		}
		s.upserts[i] = `INSERT INTO ` + t.positions + ` AS p (key, "offset", skip, meta, updated_at)
` + src + `
ON CONFLICT (key) DO UPDATE SET "offset" = excluded."offset", skip = excluded.skip, meta = excluded.meta, updated_at = excluded.updated_at
WHERE ` + after(!strict) + `
RETURNING 1`
	}
	return s
}

// upsert returns the position upsert: strict refuses an equal position,
// fenced takes the lease key and token as $5 and $6.
func (s statements) upsert(strict, fenced bool) string {
	i := 0
	if strict {
		i |= 1
	}
	if fenced {
		i |= 2
	}
	return s.upserts[i]
}
