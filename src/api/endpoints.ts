/**
 * The hosted API's menu as one table: every call the app can make, where it goes, what it takes,
 * what it answers and how a queued job is followed. The remote client, the request router,
 * `window.sdapi` and "copy as API request" are all built from it, so a call is added here once.
 * Data only: no DOM, no I/O.
 *
 * Sources, per group: [doc] a hosted docs page (stablediffusionapi.com/docs for the v3/v4/v5
 * calls the app was written against, docs.modelslab.com and its source, github.com/ModelsLab/docs-v2,
 * for the v6 families that only exist there); [obs] seen in clients' code or inferred, not in the
 * docs: check again before relying on one.
 */

export const ENDPOINT_GROUPS = [
  'stable-diffusion', 'community-models', 'controlnet', 'image-editing', 'video', '3d', 'training', 'model-management', 'chat',
] as const;
export type EndpointGroup = (typeof ENDPOINT_GROUPS)[number];

/**
 * The shape of a call's answer, which decides how strictly it is read:
 * - images: `{status:"success", output:[url...], meta}` (the generation shape; anything else is an error)
 * - image: success with `output` a single URL string (v3 super_resolution)
 * - list: a JSON array or a list object, passed through
 * - status / object: the service's own object, passed through (a job or training state; a record)
 * - system-load: `{status:"ok", queue_num, queue_time}`
 */
export type ResponseKind = 'images' | 'image' | 'list' | 'status' | 'object' | 'system-load';

/**
 * How a "processing" answer is followed: the name of the call that reads a job's state (its path
 * takes the job id in its one `{placeholder}`, or, without one, as `request_id` in the body, as v4
 * does); 'fetch_result' where the docs name no such call and only the answer's own fetch_result
 * (on the endpoint's origin) can be followed; null for the calls that read a job's state
 * themselves, whose "processing" is the answer.
 */
export type FetchVia<N extends string> = N | 'fetch_result' | null;

export interface EndpointSpec<N extends string = string> {
  /** The hosted call's name (snake_case, as the hosted docs and paths spell it). */
  readonly name: N;
  readonly group: EndpointGroup;
  /** Path on the endpoint's origin; `{field}` is filled from the request's field of that name. */
  readonly path: string;
  readonly version: 3 | 4 | 5 | 6;
  /** Request fields beyond `key`. */
  readonly fields: readonly string[];
  readonly response: ResponseKind;
  readonly fetch: FetchVia<N>;
  /** Whether the app has (or is to have) a local handler for it. */
  readonly local: boolean;
  readonly description: string;
}

const GENERATION_FIELDS = [
  'prompt', 'negative_prompt', 'width', 'height', 'samples', 'num_inference_steps', 'guidance_scale', 'seed',
  'safety_checker', 'enhance_prompt', 'webhook', 'track_id', 'scheduler', 'model_id', 'base64',
] as const;

const DREAMBOOTH_FIELDS = [
  'model_id', 'prompt', 'negative_prompt', 'width', 'height', 'samples', 'num_inference_steps', 'safety_checker',
  'safety_checker_type', 'enhance_prompt', 'seed', 'guidance_scale', 'multi_lingual', 'panorama', 'self_attention', 'upscale',
  'embeddings_model', 'lora_model', 'lora_strength', 'clip_skip', 'vae', 'scheduler', 'tomesd', 'use_karras_sigmas',
  'algorithm_type', 'webhook', 'track_id',
] as const;

const TABLE = [
  // --- stable-diffusion: the v3 "Stable Diffusion API" (API.md's core). [doc]
  // stablediffusionapi.com/docs/stable-diffusion-api/{overview,texttoimage,imagetoimage,inpainting,
  // systemload} and /docs/features/queue-images (POST /api/v3/fetch/{id}, key in the body).
  {
    name: 'text2img', group: 'stable-diffusion', path: '/api/v3/text2img', version: 3,
    fields: GENERATION_FIELDS, response: 'images', fetch: 'fetch', local: true,
    description: 'An image from a text prompt.',
  },
  {
    name: 'img2img', group: 'stable-diffusion', path: '/api/v3/img2img', version: 3,
    fields: [...GENERATION_FIELDS, 'init_image', 'strength'], response: 'images', fetch: 'fetch', local: true,
    description: 'An image from an image and a prompt.',
  },
  {
    name: 'inpaint', group: 'stable-diffusion', path: '/api/v3/inpaint', version: 3,
    fields: [...GENERATION_FIELDS, 'init_image', 'strength', 'mask_image'], response: 'images', fetch: 'fetch', local: true,
    description: 'Repaints the white part of a mask over an image.',
  },
  {
    name: 'fetch', group: 'stable-diffusion', path: '/api/v3/fetch/{id}', version: 3,
    fields: ['id'], response: 'images', fetch: null, local: true,
    description: 'The result (or state) of an earlier request, by id.',
  },
  {
    name: 'system_load', group: 'stable-diffusion', path: '/api/v3/system_load', version: 3,
    fields: [], response: 'system-load', fetch: null, local: true,
    description: 'How many jobs are queued and for how long.',
  },

  // --- community-models: Dreambooth v4 with community and trained model ids. [doc]
  // stablediffusionapi.com/docs/community-models-api-v4/{dreamboothtext2img,dreamboothlora,
  // dreamboothimg2img,dreamboothinpainting,dreamboothfetchqueimg,dreamboothreloadmodel}; the fetch
  // takes the id in the body as request_id. model_list: docs.modelslab.com
  // image-generation/model-operation/model-list (POST /api/v4/dreambooth/model_list).
  {
    name: 'dreambooth', group: 'community-models', path: '/api/v4/dreambooth', version: 4,
    fields: DREAMBOOTH_FIELDS, response: 'images', fetch: 'dreambooth_fetch', local: true,
    description: 'Text to image with a community or trained model (model_id), LoRA and VAE.',
  },
  {
    name: 'dreambooth_img2img', group: 'community-models', path: '/api/v4/dreambooth/img2img', version: 4,
    fields: [...DREAMBOOTH_FIELDS, 'init_image', 'strength'], response: 'images', fetch: 'dreambooth_fetch', local: true,
    description: 'Image to image with a community or trained model.',
  },
  {
    name: 'dreambooth_inpaint', group: 'community-models', path: '/api/v4/dreambooth/inpaint', version: 4,
    fields: [...DREAMBOOTH_FIELDS, 'init_image', 'strength', 'mask_image'], response: 'images', fetch: 'dreambooth_fetch', local: true,
    description: 'Inpainting with a community or trained model.',
  },
  {
    name: 'dreambooth_fetch', group: 'community-models', path: '/api/v4/dreambooth/fetch', version: 4,
    fields: ['request_id'], response: 'images', fetch: null, local: false,
    description: 'The result (or state) of an earlier v4 request, by request_id.',
  },
  {
    name: 'model_reload', group: 'community-models', path: '/api/v4/dreambooth/model_reload', version: 4,
    fields: ['model_id'], response: 'status', fetch: 'dreambooth_fetch', local: false,
    description: 'Loads an idle community model again.',
  },
  {
    name: 'model_list', group: 'community-models', path: '/api/v4/dreambooth/model_list', version: 4,
    fields: [], response: 'list', fetch: 'dreambooth_fetch', local: true,
    description: 'The public models and their ids.',
  },

  // --- controlnet: v5. [doc] stablediffusionapi.com/docs/controlnet/{controlnet-main,controlnet-multi};
  // docs-v2 image-generation/controlnet/openapi.json (server /api/v5). Processing answers may carry
  // output "" (API.md). Polling: the docs name no v5 fetch call; the answer's own fetch_result wins
  // when it is on the endpoint's origin, else the v3 fetch by id. [obs]
  {
    name: 'controlnet', group: 'controlnet', path: '/api/v5/controlnet', version: 5,
    fields: [
      'model_id', 'controlnet_model', 'controlnet_type', 'auto_hint', 'guess_mode', 'prompt', 'negative_prompt', 'init_image',
      'control_image', 'mask_image', 'width', 'height', 'samples', 'scheduler', 'tomesd', 'use_karras_sigmas', 'algorithm_type',
      'vae', 'lora_strength', 'lora_model', 'num_inference_steps', 'safety_checker', 'ip_adapter_id', 'ip_adapter_scale',
      'ip_adapter_image', 'enhance_prompt', 'controlnet_conditioning_scale', 'strength', 'guidance_scale', 'seed', 'webhook',
      'track_id', 'upscale', 'clip_skip', 'base64', 'temp',
    ],
    response: 'images', fetch: 'fetch', local: false,
    description: 'Generation steered by ControlNet models (several, comma-separated), inpainting with a mask.',
  },

  // --- image-editing. super_resolution: v3 {url, scale, face_enhance} answering `output` as one URL
  // string, as API.md and clients use it [obs]. outpaint: the v6 call (image, width, height,
  // overlap_width), which is what the local engine implements, so one request runs either way
  // [doc: docs.modelslab.com image-editing/outpaint; the older /api/v5/outpaint takes walk_type
  // steps instead]. The rest: docs-v2 image-editing/openapi.json (server /api/v6), polled with
  // POST /api/v6/image_editing/fetch/{id}. [doc]
  {
    name: 'super_resolution', group: 'image-editing', path: '/api/v3/super_resolution', version: 3,
    fields: ['url', 'scale', 'face_enhance', 'model_id', 'webhook', 'track_id'], response: 'image', fetch: 'fetch', local: true,
    description: 'Upscales an image 2, 3 or 4 times (output: one URL).',
  },
  {
    name: 'outpaint', group: 'image-editing', path: '/api/v6/image_editing/outpaint', version: 6,
    fields: [
      'prompt', 'negative_prompt', 'image', 'width', 'height', 'overlap_width', 'num_inference_steps', 'guidance_scale', 'seed',
      'temp', 'base64', 'webhook', 'track_id',
    ],
    response: 'images', fetch: 'image_editing_fetch', local: true,
    description: 'Extends an image to width x height, generating what lies beyond its edges.',
  },
  {
    name: 'removebg_mask', group: 'image-editing', path: '/api/v6/image_editing/removebg_mask', version: 6,
    fields: [
      'image', 'alpha_matting', 'post_process_mask', 'only_mask', 'inverse_mask', 'seed', 'base64',
      'alpha_matting_foreground_threshold', 'alpha_matting_background_threshold', 'alpha_matting_erode_size', 'webhook', 'track_id',
    ],
    response: 'images', fetch: 'image_editing_fetch', local: false,
    description: 'Removes the background, or answers the foreground mask (only_mask).',
  },
  {
    name: 'object_removal', group: 'image-editing', path: '/api/v6/image_editing/object_removal', version: 6,
    fields: ['init_image', 'mask_image', 'webhook', 'track_id'], response: 'images', fetch: 'image_editing_fetch', local: false,
    description: 'Removes what a mask covers.',
  },
  {
    name: 'face_gen', group: 'image-editing', path: '/api/v6/image_editing/face_gen', version: 6,
    fields: [
      'prompt', 'face_image', 'width', 'height', 'num_inference_steps', 'guidance_scale', 's_scale', 'samples', 'safety_checker',
      'safety_checker_type', 'base64', 'style', 'webhook', 'track_id',
    ],
    response: 'images', fetch: 'image_editing_fetch', local: false,
    description: 'New images of the face in face_image.',
  },
  {
    name: 'head_shot', group: 'image-editing', path: '/api/v6/image_editing/head_shot', version: 6,
    fields: [
      'prompt', 'face_image', 'width', 'height', 'num_inference_steps', 'guidance_scale', 's_scale', 'samples', 'safety_checker',
      'safety_checker_type', 'base64', 'webhook', 'track_id',
    ],
    response: 'images', fetch: 'image_editing_fetch', local: false,
    description: 'A portrait head shot of the face in face_image.',
  },
  {
    name: 'fashion', group: 'image-editing', path: '/api/v6/image_editing/fashion', version: 6,
    fields: ['init_image', 'cloth_image', 'cloth_type', 'prompt', 'negative_prompt', 'num_inference_steps', 'temp', 'guidance_scale', 'webhook', 'track_id'],
    response: 'images', fetch: 'image_editing_fetch', local: false,
    description: 'Dresses the person in init_image in cloth_image.',
  },
  {
    name: 'img_mixer', group: 'image-editing', path: '/api/v6/image_editing/img_mixer', version: 6,
    fields: ['prompt', 'negative_prompt', 'init_image', 'width', 'height', 'steps', 'guidance_scale', 'seed', 'samples', 'webhook', 'track_id'],
    response: 'images', fetch: 'image_editing_fetch', local: false,
    description: 'Mixes several images (init_image) under a prompt.',
  },
  {
    name: 'caption', group: 'image-editing', path: '/api/v6/image_editing/caption', version: 6,
    fields: ['init_image', 'length', 'base64', 'webhook', 'track_id'], response: 'object', fetch: 'image_editing_fetch', local: false,
    description: 'A text caption of an image.',
  },
  {
    name: 'image_editing_fetch', group: 'image-editing', path: '/api/v6/image_editing/fetch/{id}', version: 6,
    fields: ['id'], response: 'images', fetch: null, local: false,
    description: 'The result (or state) of an earlier v6 image-editing request, by id.',
  },

  // --- video: v6. [doc] docs-v2 video-api/openapi.json and llms.txt (prefix /api/v6/video/, polled
  // with POST /api/v6/video/fetch/{id}). The older stablediffusionapi.com /api/v5/text2video took
  // only prompt and seconds, and its fetch is undocumented.
  {
    name: 'text2video', group: 'video', path: '/api/v6/video/text2video', version: 6,
    fields: [
      'model_id', 'prompt', 'negative_prompt', 'seed', 'height', 'width', 'num_frames', 'num_inference_steps', 'guidance_scale',
      'clip_skip', 'upscale_height', 'upscale_width', 'upscale_strength', 'upscale_guidance_scale', 'upscale_num_inference_steps',
      'use_improved_sampling', 'improved_sampling_seed', 'fps', 'output_type', 'instant_response', 'temp', 'webhook', 'track_id',
    ],
    response: 'images', fetch: 'video_fetch', local: false,
    description: 'A video from a text prompt.',
  },
  {
    name: 'img2video', group: 'video', path: '/api/v6/video/img2video', version: 6,
    fields: [
      'model_id', 'init_image', 'prompt', 'negative_prompt', 'height', 'width', 'num_frames', 'num_inference_steps',
      'min_guidance_scale', 'max_guidance_scale', 'motion_bucket_id', 'noise_aug_strength', 'fps', 'output_type', 'temp', 'webhook', 'track_id',
    ],
    response: 'images', fetch: 'video_fetch', local: false,
    description: 'Animates an image into a video.',
  },
  {
    name: 'video2video', group: 'video', path: '/api/v6/video/video2video', version: 6,
    fields: ['init_image', 'init_video', 'to_animate', 'resolution', 'num_inference_steps', 'webhook', 'track_id'],
    response: 'images', fetch: 'video_fetch', local: false,
    description: 'Transforms a video.',
  },
  {
    name: 'text2video_ultra', group: 'video', path: '/api/v6/video/text2video_ultra', version: 6,
    fields: [
      'model_id', 'prompt', 'negative_prompt', 'seed', 'resolution', 'num_frames', 'num_inference_steps', 'guidance_scale', 'fps',
      'portrait', 'sample_shift', 'temp', 'webhook', 'track_id',
    ],
    response: 'images', fetch: 'video_fetch', local: false,
    description: 'A high-definition video from a text prompt.',
  },
  {
    name: 'img2video_ultra', group: 'video', path: '/api/v6/video/img2video_ultra', version: 6,
    fields: [
      'model_id', 'prompt', 'init_image', 'negative_prompt', 'seed', 'resolution', 'num_frames', 'num_inference_steps',
      'guidance_scale', 'fps', 'portrait', 'sample_shift', 'base64', 'temp', 'webhook', 'track_id',
    ],
    response: 'images', fetch: 'video_fetch', local: false,
    description: 'A high-definition video from an image.',
  },
  {
    name: 'scene_maker', group: 'video', path: '/api/v6/video/scene_maker', version: 6,
    fields: [
      'scenes', 'prompt', 'negative_prompt', 'height', 'width', 'num_frames', 'seed', 'num_inference_steps', 'guidance_scale',
      'stg_scale', 'stg_rescale', 'frame_rate', 'temp',
    ],
    response: 'images', fetch: 'video_fetch', local: false,
    description: 'A video moving through several scenes (images and prompts).',
  },
  {
    name: 'watermark_remover', group: 'video', path: '/api/v6/video/watermark_remover', version: 6,
    fields: ['init_video', 'webhook', 'track_id'], response: 'images', fetch: 'video_fetch', local: false,
    description: 'Removes a watermark from a video.',
  },
  {
    name: 'video_fetch', group: 'video', path: '/api/v6/video/fetch/{id}', version: 6,
    fields: ['id'], response: 'images', fetch: null, local: false,
    description: 'The result (or state) of an earlier video request, by id.',
  },

  // --- 3d: v6. [doc] docs-v2 3d-api/openapi.json (server /api/v6; POST /3d/fetch/{id}).
  {
    name: 'text_to_3d', group: '3d', path: '/api/v6/3d/text_to_3d', version: 6,
    fields: [
      'prompt', 'resolution', 'output_format', 'render', 'negative_prompt', 'guidance_scale', 'num_inference_steps',
      'ss_guidance_strength', 'ss_sampling_steps', 'slat_guidance_strength', 'slat_sampling_steps', 'mesh_simplify',
      'foreground_ratio', 'remove_bg', 'chunk_size', 'seed', 'temp', 'webhook', 'track_id',
    ],
    response: 'images', fetch: 'fetch_3d', local: false,
    description: 'A 3D object (glb/obj) from a text prompt.',
  },
  {
    name: 'image_to_3d', group: '3d', path: '/api/v6/3d/image_to_3d', version: 6,
    fields: [
      'init_image', 'output_format', 'render', 'resolution', 'multi_image', 'ss_guidance_strength', 'ss_sampling_steps',
      'slat_guidance_strength', 'slat_sampling_steps', 'mesh_simplify', 'chunk_size', 'seed', 'temp', 'webhook', 'track_id',
    ],
    response: 'images', fetch: 'fetch_3d', local: false,
    description: 'A 3D object from an image.',
  },
  {
    name: 'fetch_3d', group: '3d', path: '/api/v6/3d/fetch/{id}', version: 6,
    fields: ['id'], response: 'images', fetch: null, local: false,
    description: 'The result (or state) of an earlier 3D request, by id.',
  },

  // --- training: v3. [doc] docs.modelslab.com image-generation/train-model/* and its openapi.json
  // (server /api/v3). The paths are the pages' curl lines: the hosted API spells cancle_training
  // and finetune/delete there (its openapi.json writes cancel_training and delete; the curl is
  // what the service has answered to for years). Dreambooth fine_tune: the stablediffusionapi.com
  // "Dreambooth model" page as mirrored on stablediffusionapi.apifox.cn [obs]. A training run is
  // followed with fine_tune_status [obs: the docs poll it by hand].
  {
    name: 'lora_fine_tune', group: 'training', path: '/api/v3/lora_fine_tune', version: 3,
    fields: [
      'instance_prompt', 'class_prompt', 'base_model_type', 'negative_prompt', 'images', 'training_type', 'lora_type',
      'max_train_steps', 'seed', 'webhook', 'wandb_key',
    ],
    response: 'object', fetch: 'fine_tune_status', local: false,
    description: 'Starts training a LoRA on your images.',
  },
  {
    name: 'fine_tune', group: 'training', path: '/api/v3/fine_tune', version: 3,
    fields: ['instance_prompt', 'class_prompt', 'base_model_id', 'images', 'seed', 'training_type', 'max_train_steps', 'webhook'],
    response: 'object', fetch: 'fine_tune_status', local: false,
    description: 'Starts a Dreambooth fine-tune of a base model on your images.',
  },
  {
    name: 'fine_tune_status', group: 'training', path: '/api/v3/fine_tune_status/{training_id}', version: 3,
    fields: ['training_id'], response: 'status', fetch: null, local: false,
    description: 'The state of a training run and the time left.',
  },
  {
    name: 'finetune_list', group: 'training', path: '/api/v3/finetune_list', version: 3,
    fields: [], response: 'list', fetch: null, local: false,
    description: 'The models you have trained.',
  },
  {
    name: 'finetune_delete', group: 'training', path: '/api/v3/finetune/delete/{training_id}', version: 3,
    fields: ['training_id'], response: 'status', fetch: null, local: false,
    description: 'Deletes a trained model.',
  },
  {
    name: 'cancel_training', group: 'training', path: '/api/v3/cancle_training/{training_id}', version: 3,
    fields: ['training_id'], response: 'status', fetch: null, local: false,
    description: 'Cancels a training run.',
  },

  // --- model-management ("MIS"): docs.modelslab.com general-api/{base64-crop,delete-image,
  // nsfw-image-check,base64-to-url} and image-generation/model-operation/upload-model. [doc]
  // None of them documents a processing answer; one would be polled with the v3 fetch. [obs]
  {
    name: 'base64_crop', group: 'model-management', path: '/api/v3/base64_crop', version: 3,
    fields: ['image', 'crop'], response: 'object', fetch: 'fetch', local: true,
    description: 'Uploads a base64 image (optionally cropped) and answers its URL.',
  },
  {
    name: 'delete_image', group: 'model-management', path: '/api/v3/delete_image', version: 3,
    fields: ['request_id', 'type'], response: 'status', fetch: 'fetch', local: false,
    description: 'Deletes the images of a request from the hosted storage.',
  },
  {
    name: 'nsfw_image_check', group: 'model-management', path: '/api/v3/nsfw_image_check', version: 3,
    fields: ['init_image', 'threshold'], response: 'object', fetch: 'fetch', local: false,
    description: 'Whether an image is NSFW.',
  },
  {
    name: 'load_model', group: 'model-management', path: '/api/v3/load_model', version: 3,
    fields: [
      'url', 'model_id', 'force_load', 'model_format', 'revision', 'model_category', 'model_subcategory', 'model_visibility',
      'model_name', 'model_image', 'hf_upload',
    ],
    response: 'status', fetch: 'fetch', local: false,
    description: 'Uploads a model (a checkpoint URL or a Hugging Face repository) to your account.',
  },
  {
    name: 'base64_to_url', group: 'model-management', path: '/api/v6/base64_to_url', version: 6,
    fields: ['base64_string'], response: 'object', fetch: 'fetch', local: false,
    description: 'Uploads base64 data and answers its URL.',
  },

  // --- chat: docs.modelslab.com uncensored-chat-api/uncensored-chat (POST /api/v6/llm/uncensored_chat,
  // key in the body; the reply is `message` of a success). [doc] Its OpenAI-compatible sibling takes
  // the key in an Authorization header, which this app never sends, so it is not listed. No fetch
  // call is documented: a processing answer is followed through its own fetch_result only. [obs]
  {
    name: 'uncensored_chat', group: 'chat', path: '/api/v6/llm/uncensored_chat', version: 6,
    fields: ['messages', 'max_tokens', 'webhook', 'track_id'], response: 'object', fetch: 'fetch_result', local: false,
    description: 'A chat reply to a list of {role, content} messages.',
  },
] as const satisfies readonly EndpointSpec[];

/** The name of a hosted call in the table. */
export type EndpointName = (typeof TABLE)[number]['name'];

/** The table. Typed against EndpointName so that every `fetch` names a call in it. */
export const ENDPOINTS: readonly EndpointSpec<EndpointName>[] = TABLE;

/** A local implementation of a call: the request as plain fields in, the API's answer out. */
export type EndpointHandler = (request: Record<string, unknown>) => Promise<unknown>;

/**
 * The calls the local engine answers, by name. The local client supplies them; a name without one
 * goes to the hosted API (auto, remote) or is refused with a reason (local).
 */
export type LocalHandlers = Partial<Record<EndpointName, EndpointHandler>>;

const BY_NAME: ReadonlyMap<string, EndpointSpec<EndpointName>> = new Map(ENDPOINTS.map((e) => [e.name, e]));

export function isEndpointName(name: unknown): name is EndpointName {
  return typeof name === 'string' && BY_NAME.has(name);
}

/** The table's entry for a name; undefined for a name it does not have (a caller's typo). */
export function byName(name: string): EndpointSpec<EndpointName> | undefined {
  return BY_NAME.get(name);
}

/** The entries of each group, in the table's order. */
export function groups(): ReadonlyMap<EndpointGroup, readonly EndpointSpec<EndpointName>[]> {
  return new Map(ENDPOINT_GROUPS.map((g) => [g, ENDPOINTS.filter((e) => e.group === g)]));
}

/** `super_resolution` -> `superResolution`: the method name a client gives a call. */
export type MethodName<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<MethodName<Tail>>}` : S;

export function methodName<S extends string>(name: S): MethodName<S> {
  return name.replace(/_(.)/g, (_m, c: string) => c.toUpperCase()) as MethodName<S>;
}

/** The `{placeholder}` names in a path, in order. */
export function pathParams(path: string): string[] {
  return [...path.matchAll(/\{([a-z_][a-z0-9_]*)\}/gi)].map((m) => m[1]!);
}

export type FilledPath = { ok: true; path: string; body: Record<string, unknown> } | { ok: false; missing: string };

/**
 * The entry's path with its placeholders filled from the request's fields, and the fields that
 * remain for the body (a value in the path is not sent twice). Values are URL-encoded.
 */
export function fillPath(entry: EndpointSpec, fields: Record<string, unknown>): FilledPath {
  const body: Record<string, unknown> = { ...fields };
  let path = entry.path;
  for (const param of pathParams(entry.path)) {
    const value = fields[param];
    if ((typeof value !== 'string' && typeof value !== 'number') || String(value).trim() === '') return { ok: false, missing: param };
    path = path.replace(`{${param}}`, encodeURIComponent(String(value).trim()));
    delete body[param];
  }
  return { ok: true, path, body };
}

/** How to ask for a job's state: the fetch call's path filled with the id, and the body fields beside `key`. */
export function fetchRequest(fetchEntry: EndpointSpec, id: number | string): { path: string; body: Record<string, unknown> } {
  const [param] = pathParams(fetchEntry.path);
  if (param) return { path: fetchEntry.path.replace(`{${param}}`, encodeURIComponent(String(id))), body: {} };
  return { path: fetchEntry.path, body: { request_id: id } };
}

/** The request that reads a job of `fetchEntry`, as a caller would write it (for messages). */
export function fetchCallText(fetchEntry: EndpointSpec, id: number | string): string {
  const [param] = pathParams(fetchEntry.path);
  if (fetchEntry.name === 'fetch') return `fetch(${id})`;
  return `call("${fetchEntry.name}", ${JSON.stringify({ [param ?? 'request_id']: id })})`;
}
