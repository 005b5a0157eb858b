/**
 * AUTOMATIC1111's sampler names, which many API users send in `scheduler`, mapped onto the API's
 * scheduler names plus the modifiers that make them the same sampler (diffusers' own mapping).
 */
export interface SchedulerAlias {
  scheduler: string;
  use_karras_sigmas?: boolean;
  algorithm_type?: string;
}

const BASE: Record<string, SchedulerAlias> = {
  'euler': { scheduler: 'EulerDiscreteScheduler' },
  'euler a': { scheduler: 'EulerAncestralDiscreteScheduler' },
  'lms': { scheduler: 'LMSDiscreteScheduler' },
  'heun': { scheduler: 'HeunDiscreteScheduler' },
  'dpm2': { scheduler: 'KDPM2DiscreteScheduler' },
  'dpm2 a': { scheduler: 'KDPM2AncestralDiscreteScheduler' },
  'dpm++ 2m': { scheduler: 'DPMSolverMultistepScheduler', algorithm_type: 'dpmsolver++' },
  'dpm++ 2m sde': { scheduler: 'DPMSolverMultistepScheduler', algorithm_type: 'sde-dpmsolver++' },
  'dpm++ sde': { scheduler: 'DPMSolverSinglestepScheduler' },
  'ddim': { scheduler: 'DDIMScheduler' },
  'plms': { scheduler: 'PNDMScheduler' },
  'unipc': { scheduler: 'UniPCMultistepScheduler' },
  'lcm': { scheduler: 'LCMScheduler' },
};

/** The alias for an A1111 name ("DPM++ 2M Karras", case and spacing free), or null. */
export function resolveSchedulerAlias(name: string): SchedulerAlias | null {
  const key = name.trim().toLowerCase().replace(/\s+/g, ' ');
  // Own names only: "__proto__" or "constructor" must not find Object's own members.
  const base = (name: string) => (Object.hasOwn(BASE, name) ? BASE[name] : undefined);
  const plain = base(key);
  if (plain) return plain;
  const karras = key.endsWith(' karras') ? base(key.slice(0, -' karras'.length)) : undefined;
  return karras ? { ...karras, use_karras_sigmas: true } : null;
}
