/**
 * `user_sites`: one row per (user, site id in the user's `site_ids`), so that a site's managers are
 * an index lookup instead of a scan of every user's JSON list (routing asks once per event;
 * docs/scale.md). `users.site_ids` stays the record other code reads; this table mirrors it exactly —
 * ids of sites that do not exist (any more) included — and is rewritten wherever site_ids is written,
 * in the same transaction.
 */
import type { Sql } from './sql.js';

/** Makes the user's rows in user_sites exactly `siteIds`. Call inside the transaction that writes users.site_ids. */
export async function writeUserSites(sql: Sql, userId: string, siteIds: readonly string[]): Promise<void> {
  await sql.run('DELETE FROM user_sites WHERE user_id = ?', [userId]);
  const ids = [...new Set(siteIds)];
  if (!ids.length) return;
  await sql.run(`INSERT INTO user_sites (user_id, site_id) VALUES ${ids.map(() => '(?, ?)').join(', ')}`, ids.flatMap((s) => [userId, s]));
}

/**
 * writeUserSites for many users, skipping those whose rows already match: syncOrg writes every user
 * of the config at each start, and rewriting them all cost PostgreSQL about a second at 4,000 users.
 * Call after the users' rows were written in this transaction: their row locks make another
 * instance's concurrent sync of the same users wait, or be visible to the read here.
 */
export async function syncUserSites(sql: Sql, users: readonly { id: string; siteIds: readonly string[] }[]): Promise<void> {
  const stored = new Map<string, Set<string>>();
  for (const r of await sql.all<{ user_id: string; site_id: string }>('SELECT user_id, site_id FROM user_sites')) {
    const set = stored.get(r.user_id) ?? new Set();
    set.add(r.site_id);
    stored.set(r.user_id, set);
  }
  for (const u of users) {
    const want = new Set(u.siteIds), have = stored.get(u.id) ?? new Set();
    if (want.size !== have.size || [...want].some((s) => !have.has(s))) await writeUserSites(sql, u.id, [...want]);
  }
}

/** Fills user_sites from every user's site_ids (migration 7, for databases that had users before it). */
export async function backfillUserSites(sql: Sql): Promise<void> {
  const users = (await sql.all<{ id: string; site_ids: string }>('SELECT id, site_ids FROM users')).map((r) => {
    let ids: unknown;
    try { ids = JSON.parse(r.site_ids); } catch { ids = []; }
    // a malformed list is no sites; only strings name one
    return { id: r.id, siteIds: Array.isArray(ids) ? ids.filter((s): s is string => typeof s === 'string') : [] };
  });
  await syncUserSites(sql, users);
}
