/** Load and cross-check central's YAML config; errors name the file, the path and the value. */
import path from 'node:path';
import { ConfigError, readYaml, validate } from '../../common/config.js';
import { CentralConfigSchema, type CentralConfig, type OrgConfig } from './schema.js';

export { ConfigError };

/** Referential checks the schema cannot express (unknown ids, duplicates, role fields). */
export function checkOrg(org: OrgConfig): string[] {
  const problems: string[] = [];
  const dup = (list: { id: string }[], where: string) => {
    const seen = new Set<string>();
    list.forEach((x, i) => {
      if (seen.has(x.id)) problems.push(`org.${where}[${i}].id: duplicate id "${x.id}"`);
      seen.add(x.id);
    });
    return seen;
  };
  const cities = dup(org.cities, 'cities');
  const districts = dup(org.districts, 'districts');
  const townships = dup(org.townships, 'townships');
  const schools = dup(org.schools, 'schools');
  org.districts.forEach((d, i) => {
    if (d.cityId && !cities.has(d.cityId)) problems.push(`org.districts[${i}].cityId: no city "${d.cityId}"`);
  });
  org.townships.forEach((t, i) => {
    if (!districts.has(t.districtId)) problems.push(`org.townships[${i}].districtId: no district "${t.districtId}"`);
  });
  const sites = dup(org.sites, 'sites');
  dup(org.users, 'users');
  const usernames = new Set<string>();
  const slugs = new Set<string>();
  org.schools.forEach((s, i) => {
    if (!districts.has(s.districtId)) problems.push(`org.schools[${i}].districtId: no district "${s.districtId}"`);
    if (s.townshipId) {
      const t = org.townships.find((x) => x.id === s.townshipId);
      if (!t) problems.push(`org.schools[${i}].townshipId: no township "${s.townshipId}"`);
      else if (t.districtId !== s.districtId) problems.push(`org.schools[${i}].townshipId: township "${t.id}" is in district "${t.districtId}", the school in "${s.districtId}"`);
    }
  });
  org.sites.forEach((s, i) => {
    if (!schools.has(s.schoolId)) problems.push(`org.sites[${i}].schoolId: no school "${s.schoolId}"`);
    const cams = new Set<string>();
    s.cameras.forEach((c, j) => {
      if (cams.has(c.id)) problems.push(`org.sites[${i}].cameras[${j}].id: duplicate camera id "${c.id}"`);
      cams.add(c.id);
    });
    const pub = s.public;
    if (pub) {
      const at = `org.sites[${i}].public`;
      if (pub.enabled && !pub.slug) problems.push(`${at}.slug: a public site needs a slug (16–64 letters, digits, "_" or "-"; make one with: openssl rand -hex 12)`);
      if (pub.slug && slugs.has(pub.slug)) problems.push(`${at}.slug: slug already used by another site`);
      if (pub.slug) slugs.add(pub.slug);
      if (pub.camera && !cams.has(pub.camera)) problems.push(`${at}.camera: no camera "${pub.camera}" at this site`);
      if (pub.enabled && pub.snapshot && !pub.camera) problems.push(`${at}.camera: snapshot is on: name the camera whose picture is public (or set snapshot: false)`);
    }
  });
  org.users.forEach((u, i) => {
    const at = `org.users[${i}]`;
    if (usernames.has(u.username)) problems.push(`${at}.username: duplicate username "${u.username}"`);
    usernames.add(u.username);
    if (sites.has(u.id) || sites.has(u.username)) problems.push(`${at}: id/username "${u.username}" collides with a site id (both log in to the broker)`);
    if (u.role === 'canteen_manager') {
      if (!u.siteIds?.length) problems.push(`${at}.siteIds: a canteen_manager needs at least one site id`);
      u.siteIds?.forEach((s, j) => { if (!sites.has(s)) problems.push(`${at}.siteIds[${j}]: no site "${s}"`); });
    }
    if (u.role === 'vice_principal') {
      if (!u.schoolId) problems.push(`${at}.schoolId: a vice_principal needs a schoolId`);
      else if (!schools.has(u.schoolId)) problems.push(`${at}.schoolId: no school "${u.schoolId}"`);
    }
    if (u.role === 'inspector') {
      const levels = [u.townshipId && 'townshipId', u.districtId && 'districtId', u.cityId && 'cityId'].filter(Boolean);
      if (levels.length !== 1) {
        problems.push(levels.length
          ? `${at}: an inspector belongs to one office: give one of townshipId, districtId, cityId (got ${levels.join(' and ')})`
          : `${at}.districtId: an inspector needs a districtId (or townshipId / cityId: the office they belong to)`);
      }
      if (u.districtId && !districts.has(u.districtId)) problems.push(`${at}.districtId: no district "${u.districtId}"`);
      if (u.townshipId && !townships.has(u.townshipId)) problems.push(`${at}.townshipId: no township "${u.townshipId}"`);
      if (u.cityId && !cities.has(u.cityId)) problems.push(`${at}.cityId: no city "${u.cityId}"`);
    }
  });
  return problems;
}

/** Validate parsed data as a central config (tests build configs in code and pass them here). */
export function parseCentralConfig(data: unknown, file = '(inline config)'): CentralConfig {
  const cfg = validate(CentralConfigSchema, data, file);
  const problems = checkOrg(cfg.org);
  if (problems.length) throw new ConfigError(file, problems);
  return cfg;
}

/**
 * Load a config file. Relative paths in it (dataDir, tls, caFile) resolve against the current
 * directory, as the agent's site config does (so `var/central` means the same to both).
 */
export function loadCentralConfig(file: string): CentralConfig {
  const cfg = parseCentralConfig(readYaml(file), file);
  const abs = (p: string) => path.resolve(p);
  cfg.dataDir = abs(cfg.dataDir);
  if (cfg.broker.mode === 'embedded' && cfg.broker.tls) cfg.broker.tls = { cert: abs(cfg.broker.tls.cert), key: abs(cfg.broker.tls.key) };
  if (cfg.broker.mode === 'external' && cfg.broker.caFile) cfg.broker.caFile = abs(cfg.broker.caFile);
  return cfg;
}
