/** Site config errors as an installer reads them: the place, the problem, a hint, no secrets. */
import { describe, expect, it } from 'vitest';
import { nearestKey, validate } from '../../agent/config/load.js';
import { SiteConfigSchema } from '../../agent/config/schema.js';
import { inServiceHours } from '../../agent/rules/index.js';

const base = { site: { id: 's1', name: '食堂' }, cameras: [{ id: 'cam1', name: '后厨', url: 'rtsp://127.0.0.1/x' }] };
const problems = (data: unknown): string => {
  try {
    validate(SiteConfigSchema, data, 'site.yaml');
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a config error');
};

describe('site config errors', () => {
  it('never echo a camera URL password', () => {
    const msg = problems({ ...base, cameras: [{ id: 'cam1', name: '后厨', url: 'rtps://admin:S3cret!@10.0.0.5/h264' }] });
    expect(msg).toMatch(/cameras\[0\]\.url: expected an rtsp:\/\/, rtsps:\/\/ or file:\/\/ URL \(got "rtps:\/\/\*\*\*@10\.0\.0\.5\/h264"\)/);
    expect(msg).not.toContain('S3cret');
    const sub = problems({ ...base, cameras: [{ ...base.cameras[0], substreamUrl: 'http://admin:S3cret!@10.0.0.5/sub' }] });
    expect(sub).toMatch(/cameras\[0\]\.substreamUrl: expected an rtsp:\/\/, rtsps:\/\/ or file:\/\/ URL \(got "http:\/\/\*\*\*@10\.0\.0\.5\/sub"\)/);
    expect(sub).not.toContain('S3cret');
  });

  it('suggest the nearest key for a misspelt one, at any depth', () => {
    expect(problems({ ...base, serviceHour: [] })).toMatch(/Unrecognized key: "serviceHour" \(did you mean "serviceHours" for "serviceHour"\?\)/);
    expect(problems({ ...base, cameras: [{ ...base.cameras[0], fsp: 2 }] })).toMatch(/cameras\[0\].*"fsp".*did you mean "fps"/);
    expect(problems({ ...base, boards: { raw: ['red'], cookd: ['yellow'] } })).toMatch(/did you mean "cooked" for "cookd"/);
    expect(problems({ ...base, frobnicate: 1 })).not.toMatch(/did you mean/);
  });

  it('nearestKey: close keys only', () => {
    expect(nearestKey('serviceHour', ['site', 'serviceHours', 'cameras'])).toBe('serviceHours');
    expect(nearestKey('zzz', ['site', 'serviceHours'])).toBeUndefined();
  });
});

describe('service hours', () => {
  const all = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
  it('from == to is the whole day, 23:59:30 included (00:00-23:59 leaves that minute closed)', () => {
    const lateUtc = Date.UTC(2026, 11, 6, 15, 59, 30); // 23:59:30 in Shanghai
    expect(inServiceHours(lateUtc, [{ days: [...all], from: '00:00', to: '00:00' }], 'Asia/Shanghai')).toBe(true);
    expect(inServiceHours(lateUtc, [{ days: [...all], from: '00:00', to: '23:59' }], 'Asia/Shanghai')).toBe(false);
  });
});
