/**
 * The MQTT topic map, defined once for agent and central. Every topic lives under a prefix
 * (default `bk/v1`) so several deployments can share one broker cluster.
 * A site publishes only under `<prefix>/site/<siteId>/…`; a recipient reads only `<prefix>/user/<userId>/…`.
 */
export const DEFAULT_PREFIX = 'bk/v1';

export type SnapshotVariant = 'annotated' | 'clean';

export function topics(prefix = DEFAULT_PREFIX) {
  const site = (siteId: string) => `${prefix}/site/${siteId}`;
  return {
    /** agent → central, QoS 1: one violation event (JSON, EventMessage). */
    event: (siteId: string) => `${site(siteId)}/event`,
    /** agent → central, QoS 1: JPEG bytes of an event's snapshot. */
    snapshot: (siteId: string, eventId: string, variant: SnapshotVariant) =>
      `${site(siteId)}/snapshot/${eventId}/${variant}`,
    /** agent → central, QoS 1: bytes of one chunk of an event's clip (index from 0). */
    clipChunk: (siteId: string, eventId: string, index: number) => `${site(siteId)}/clip/${eventId}/${index}`,
    /** agent → central, QoS 1, after the chunks: the clip's ClipManifest (JSON). */
    clip: (siteId: string, eventId: string) => `${site(siteId)}/clip/${eventId}`,
    /** agent → central, retained, also the agent's last will (SiteStatus). */
    siteStatus: (siteId: string) => `${site(siteId)}/status`,
    /** agent → central, retained (CameraStatus). */
    cameraStatus: (siteId: string, cameraId: string) => `${site(siteId)}/camera/${cameraId}/status`,
    /** agent → central, periodic (SiteStats). */
    stats: (siteId: string) => `${site(siteId)}/stats`,
    /** central → agent, QoS 1: signed voice command (VoiceCommand). */
    voiceCommand: (siteId: string) => `${site(siteId)}/voice/command`,
    /** agent → central, QoS 1: what became of a voice command (VoiceStatus). */
    voiceStatus: (siteId: string) => `${site(siteId)}/voice/status`,
    /** central → one recipient (phone app), QoS 1 (RecipientAlert). */
    userAlert: (userId: string) => `${prefix}/user/${userId}/alert`,
    /** Subscription filters used by central (wrap in $share/<group>/ for shared subscriptions). */
    filters: {
      allSites: `${prefix}/site/+/#`,
    },
  };
}

export type TopicMap = ReturnType<typeof topics>;

/** Parse a site topic back into its parts; null when it is not one of ours. */
export function parseSiteTopic(topic: string, prefix = DEFAULT_PREFIX):
  | { siteId: string; kind: 'event' | 'status' | 'stats' | 'voice/command' | 'voice/status' }
  | { siteId: string; kind: 'camera'; cameraId: string }
  | { siteId: string; kind: 'snapshot'; eventId: string; variant: SnapshotVariant }
  | { siteId: string; kind: 'clip'; eventId: string }
  | { siteId: string; kind: 'clip-chunk'; eventId: string; index: number }
  | null {
  const head = `${prefix}/site/`;
  if (!topic.startsWith(head)) return null;
  const parts = topic.slice(head.length).split('/');
  const [siteId, a, b, c] = parts;
  if (!siteId || !a) return null;
  if (parts.length === 2 && (a === 'event' || a === 'status' || a === 'stats')) return { siteId, kind: a };
  if (parts.length === 3 && a === 'voice' && (b === 'command' || b === 'status')) return { siteId, kind: `voice/${b}` };
  if (parts.length === 4 && a === 'camera' && b && c === 'status') return { siteId, kind: 'camera', cameraId: b };
  if (parts.length === 4 && a === 'snapshot' && b && (c === 'annotated' || c === 'clean')) {
    return { siteId, kind: 'snapshot', eventId: b, variant: c };
  }
  if (parts.length === 3 && a === 'clip' && b) return { siteId, kind: 'clip', eventId: b };
  if (parts.length === 4 && a === 'clip' && b && c && /^(0|[1-9]\d{0,3})$/.test(c)) return { siteId, kind: 'clip-chunk', eventId: b, index: Number(c) };
  return null;
}
