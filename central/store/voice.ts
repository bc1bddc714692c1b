/** Voice commands sent to sites, and the states the sites report for them. */
import type { Sql } from './sql.js';
import type { Row } from './rows.js';
import { scopeSql } from './scope.js';
import type { AuditLog } from './audit.js';
import type { Scope, VoiceRecord, VoiceState, VoiceView } from './types.js';

export class VoiceRows {
  constructor(private readonly sql: Sql, private readonly auditLog: AuditLog) {}

  async insertVoice(v: VoiceRecord): Promise<void> {
    await this.sql.run('INSERT INTO voice_commands (id, site_id, camera_id, type, text, issued_by, issued_at, state, state_at, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [v.id, v.siteId, v.cameraId, v.type, v.text, v.issuedBy, v.issuedAt, v.state, v.stateAt, v.error]);
  }
  /** `r` is a voice_commands row joined with the issuer's name (`issued_by_name`, see voiceSelect). */
  private voiceFrom(r: Row): VoiceView {
    return { id: r.id as string, siteId: r.site_id as string, cameraId: (r.camera_id as string) ?? null, type: r.type as VoiceRecord['type'], text: (r.text as string) ?? null,
      issuedBy: r.issued_by as string, issuedByName: (r.issued_by_name as string) ?? null, issuedAt: r.issued_at as number, state: r.state as VoiceState,
      stateAt: r.state_at as number, error: (r.error as string) ?? null };
  }
  private readonly voiceSelect = 'SELECT v.*, u.name AS issued_by_name FROM voice_commands v LEFT JOIN users u ON u.id = v.issued_by';
  /**
   * A status from the site for one of its commands. The first final state received for a command id
   * is its state for good: a later status for the same id (the agent's "rejected: nonce already used"
   * for a replayed or QoS 1 redelivered copy, or any other late report) never overwrites it; it is
   * recorded in the audit log instead (an exact duplicate of the recorded status is dropped silently).
   * null when no command of that id belongs to that site; `applied` false when the status was not applied.
   */
  async updateVoice(id: string, siteId: string, state: Exclude<VoiceState, 'sent'>, at: number, error: string | null): Promise<{ record: VoiceView; applied: boolean } | null> {
    const applied = await this.sql.tx(async () => {
      const r = (await this.sql.run(`UPDATE voice_commands SET state = ?, state_at = ?, error = ? WHERE id = ? AND site_id = ? AND state = 'sent'`, [state, at, error, id, siteId]));
      if (r.changes) return true;
      const cur = (await this.sql.get('SELECT state, state_at, error FROM voice_commands WHERE id = ? AND site_id = ?', [id, siteId])) as Row | undefined;
      if (!cur) return null;
      const duplicate = cur.state === state && cur.state_at === at && ((cur.error as string | null) ?? null) === error;
      if (!duplicate) {
        await this.auditLog.audit({ userId: `site:${siteId}`, action: 'voice.status_ignored', target: id, siteId,
          detail: `"${state}"${error ? ` (${error.slice(0, 200)})` : ''} at ${at} ignored: the command is already "${cur.state as string}"` });
      }
      return false;
    });
    if (applied === null) return null;
    return { record: this.voiceFrom((await this.sql.get(`${this.voiceSelect} WHERE v.id = ?`, [id])) as Row), applied };
  }
  async voiceCommands(scope: Scope, siteId?: string): Promise<VoiceView[]> {
    const sc = scopeSql(this.sql, scope, 'v.site_id');
    const where = [sc.sql];
    const params = [...sc.params];
    if (siteId) { where.push('v.site_id = ?'); params.push(siteId); }
    return ((await this.sql.all(`${this.voiceSelect} WHERE ${where.join(' AND ')} ORDER BY v.issued_at DESC LIMIT 200`, [...params])) as Row[]).map((r) => this.voiceFrom(r));
  }
}
