/**
 * The endpoint table's integrity: one entry per name and per path, every group of the hosted menu
 * present, versions that agree with the paths, fetch rules that name a call able to take a job id,
 * the local calls the app promises, and method names that a client can carry without collisions.
 */
import { describe, expect, it } from 'vitest';
import {
  byName, ENDPOINT_GROUPS, ENDPOINTS, fetchCallText, fetchRequest, fillPath, groups, isEndpointName, methodName, pathParams,
} from '../../src/api/endpoints.ts';

const names = ENDPOINTS.map((e) => e.name);

describe('endpoint table', () => {
  it('has unique names and unique paths', () => {
    expect(new Set(names).size).toBe(names.length);
    const paths = ENDPOINTS.map((e) => e.path);
    expect(new Set(paths).size).toBe(paths.length);
  });

  it('has every group of the hosted menu, each with at least one call', () => {
    const byGroup = groups();
    expect([...byGroup.keys()]).toEqual([...ENDPOINT_GROUPS]);
    expect(ENDPOINT_GROUPS).toEqual([
      'stable-diffusion', 'community-models', 'controlnet', 'image-editing', 'video', '3d', 'training', 'model-management', 'chat',
    ]);
    for (const [group, entries] of byGroup) expect(entries.length, group).toBeGreaterThan(0);
    for (const e of ENDPOINTS) expect(ENDPOINT_GROUPS).toContain(e.group);
  });

  it('has paths under /api/vN whose N is the version, with well-formed placeholders', () => {
    for (const e of ENDPOINTS) {
      const m = /^\/api\/v(\d)\/[a-z0-9_/{}]+$/.exec(e.path);
      expect(m, e.path).not.toBeNull();
      expect(Number(m![1]), e.name).toBe(e.version);
      expect(e.path.replace(/\{[a-z_]+\}/g, ''), e.path).not.toMatch(/[{}]/);
    }
  });

  it('never takes the key anywhere but the body, and lists every path field among its fields', () => {
    for (const e of ENDPOINTS) {
      expect(e.fields, e.name).not.toContain('key');
      expect(pathParams(e.path), e.name).not.toContain('key');
      for (const p of pathParams(e.path)) expect(e.fields, `${e.name} ${p}`).toContain(p);
      expect(new Set(e.fields).size, e.name).toBe(e.fields.length);
      expect(e.description.length, e.name).toBeGreaterThan(5);
    }
  });

  it('polls every queued call with a call that reads a job by one id slot', () => {
    for (const e of ENDPOINTS) {
      if (e.fetch === null || e.fetch === 'fetch_result') continue;
      const via = byName(e.fetch);
      expect(via, `${e.name} -> ${e.fetch}`).toBeDefined();
      expect(via!.fetch, `${e.fetch} reads jobs itself`).toBeNull();
      const params = pathParams(via!.path);
      // The id goes in the path's one placeholder, or (v4) in the body as request_id.
      if (params.length === 0) expect(via!.fields).toContain('request_id');
      else expect(params).toHaveLength(1);
    }
    // Only the calls that read state themselves, or return at once, have no rule.
    expect(ENDPOINTS.filter((e) => e.fetch === null).map((e) => e.name).sort()).toEqual([
      'cancel_training', 'dreambooth_fetch', 'fetch', 'fetch_3d', 'fine_tune_status', 'finetune_delete', 'finetune_list', 'image_editing_fetch',
      'system_load', 'video_fetch',
    ]);
  });

  it('says which calls run locally', () => {
    expect(ENDPOINTS.filter((e) => e.local).map((e) => e.name).sort()).toEqual([
      'base64_crop', 'dreambooth', 'dreambooth_img2img', 'dreambooth_inpaint', 'fetch', 'img2img', 'inpaint', 'model_list', 'outpaint',
      'super_resolution', 'system_load', 'text2img',
    ]);
  });

  it('keeps the hosted paths the docs give', () => {
    const path = (name: string) => byName(name)?.path;
    expect(path('text2img')).toBe('/api/v3/text2img');
    expect(path('fetch')).toBe('/api/v3/fetch/{id}');
    expect(path('system_load')).toBe('/api/v3/system_load');
    expect(path('dreambooth')).toBe('/api/v4/dreambooth');
    expect(path('dreambooth_fetch')).toBe('/api/v4/dreambooth/fetch');
    expect(path('model_list')).toBe('/api/v4/dreambooth/model_list');
    expect(path('controlnet')).toBe('/api/v5/controlnet');
    expect(path('super_resolution')).toBe('/api/v3/super_resolution');
    expect(path('outpaint')).toBe('/api/v6/image_editing/outpaint');
    expect(path('text2video')).toBe('/api/v6/video/text2video');
    expect(path('text_to_3d')).toBe('/api/v6/3d/text_to_3d');
    expect(path('fine_tune_status')).toBe('/api/v3/fine_tune_status/{training_id}');
    expect(path('base64_crop')).toBe('/api/v3/base64_crop');
    expect(path('uncensored_chat')).toBe('/api/v6/llm/uncensored_chat');
    expect(byName('super_resolution')?.response).toBe('image');
    expect(byName('model_list')?.response).toBe('list');
    expect(byName('dreambooth')?.fetch).toBe('dreambooth_fetch');
  });

  it('gives each call a camelCase method name that is unique and clear of the client\'s own members', () => {
    const reserved = new Set([
      'call', 'endpoints', 'cancel', 'mode', 'endpoint', 'backend', 'models', 'defaultModelId', 'prepare', 'modelStore',
      'text2img', 'img2img', 'inpaint', 'fetch', 'systemLoad',
    ]);
    const core = new Set(['text2img', 'img2img', 'inpaint', 'fetch', 'system_load']);
    const methods = ENDPOINTS.filter((e) => !core.has(e.name)).map((e) => methodName(e.name));
    expect(new Set(methods).size).toBe(methods.length);
    for (const m of methods) {
      expect(reserved.has(m), m).toBe(false);
      expect(m, m).toMatch(/^[a-z][A-Za-z0-9]*$/);
    }
    expect(methodName('super_resolution')).toBe('superResolution');
    expect(methodName('base64_crop')).toBe('base64Crop');
    expect(methodName('text_to_3d')).toBe('textTo3d');
    expect(methodName('system_load')).toBe('systemLoad');
  });

  it('looks names up, and fills paths from the request without sending a path field twice', () => {
    expect(isEndpointName('outpaint')).toBe(true);
    expect(isEndpointName('nope')).toBe(false);
    expect(byName('nope')).toBeUndefined();
    const status = byName('fine_tune_status')!;
    expect(fillPath(status, { training_id: 'a b/c', other: 1 })).toEqual({ ok: true, path: '/api/v3/fine_tune_status/a%20b%2Fc', body: { other: 1 } });
    expect(fillPath(status, {})).toEqual({ ok: false, missing: 'training_id' });
    expect(fillPath(status, { training_id: '  ' })).toEqual({ ok: false, missing: 'training_id' });
    expect(fetchRequest(byName('fetch')!, 42)).toEqual({ path: '/api/v3/fetch/42', body: {} });
    expect(fetchRequest(byName('dreambooth_fetch')!, 42)).toEqual({ path: '/api/v4/dreambooth/fetch', body: { request_id: 42 } });
    expect(fetchCallText(byName('fetch')!, 7)).toBe('fetch(7)');
    expect(fetchCallText(byName('video_fetch')!, 7)).toBe('call("video_fetch", {"id":7})');
    expect(fetchCallText(byName('dreambooth_fetch')!, 7)).toBe('call("dreambooth_fetch", {"request_id":7})');
  });
});
