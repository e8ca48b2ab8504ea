# Lantern's window, in English. Message ids are what the code asks for (`t!("id")`).
# A translation is a copy of this file with the right-hand sides translated.

language-name = English

## Parameters panel
model-label = Model
model-loading = { $name } (loading…)
model-failed = { $name } (failed)
model-none = none
open-model-folder = Open a model folder…
model-needs-vae = needs a VAE (⚙)
model-options-tip = Model options: a separate VAE, the prediction type
model-options-no-model = Choose a model first.
vae-label = VAE
vae-own = The model's own
vae-family = { $model }'s (this file has none)
vae-none-in-file = None in the file: choose one
text-encoder-family = text encoder: { $model }'s (this file has none)
vae-tip = Decode with a separate VAE file (A1111's VAE setting). Files named *.vae.safetensors beside your models, or in a VAE folder, are listed. The picture records it.
prediction-label = Prediction
prediction-auto = As the model says
prediction-epsilon = ε (epsilon)
prediction-v = v-prediction
prediction-tip = What the model was trained to predict. Only needed for a single-file SD 2.x 768 model that gives no clue (its pictures come out grey or burnt with the wrong one).
prompt-label = Prompt
prompt-hint = a lighthouse on a cliff at dusk, oil painting
negative-prompt-label = Negative prompt
negative-prompt-hint = blurry, low quality
token-count = { $used }/{ $limit } tokens
token-count-over = { $used }/{ $limit } tokens — the rest is ignored
token-count-chunks-tip = { $chunks ->
    [one] One chunk of 75 tokens. Longer prompts take more chunks (as in AUTOMATIC1111); BREAK starts a new one.
   *[other] { $chunks } chunks of 75 tokens, each encoded on its own (as in AUTOMATIC1111); BREAK starts a new one.
}
sampler-label = Sampler
steps-label = Steps
guidance-label = Guidance (CFG)
guidance-tip = How strictly to follow the prompt. 1 or less skips the negative prompt (Turbo models use 0).
size-label = Size
width-short = W
height-short = H
swap = Swap
swap-tip = Swap width and height
preset-label = Preset
size-square = Square { $side }
size-portrait = Portrait { $size }
size-landscape = Landscape { $size }
size-custom = Custom
seed-label = Seed
seed-random = random
seed-locked-tip = Seed locked: every image uses it. Click for random seeds.
seed-random-tip = A new random seed for every image (shown with the result). Click to lock a seed.
seed-reuse-tip = Reuse the last seed ({ $seed })
batch-label = Batch count
draft-decode-check = Draft (TAESD)
draft-decode-tip = Decode the picture with the tiny autoencoder ({ $taesd }) instead of the VAE: much faster, softer fine detail. The picture records it (VAE Decoder: TAESD).
draft-decode-needs-taesd = Needs the tiny autoencoder (TAESD) for this model's family: download it here or in the model manager.
draft-decode-get = Get { $name }
draft-decode-get-tip = Downloads the tiny autoencoder (about 10 MB): previews close to the final picture, and Draft decode.
advanced-heading = Advanced
advanced-heading-changed = Advanced (changed)
prompt-syntax-label = Prompt syntax
prompt-syntax-a1111 = AUTOMATIC1111
prompt-syntax-plain = Plain (diffusers)
prompt-syntax-tip = AUTOMATIC1111: (word:1.2) emphasis, BREAK and prompts of any length. Plain: the text as written, cut at 75 tokens.
clip-skip-label = Clip skip
clip-skip-tip = Which text-encoder layer guides the picture, counted from the end (1 = the usual; many anime models want 2).
noise-label = Noise source
noise-cpu = CPU (diffusers, ComfyUI)
noise-gpu = GPU (AUTOMATIC1111 default)
noise-lantern = Lantern (older pictures)
noise-tip = Where the starting noise comes from. The same seed gives the same picture as the tool that uses this source.
generate-button = Generate
queue-button = Queue
cancel-button = Cancel
queue-heading = Queue
queue-remove-tip = Remove from the queue
job-label = { $prompt } · { $width }×{ $height } · { $steps ->
    [one] { $steps } step
   *[other] { $steps } steps
}
empty-prompt = (empty prompt)

## Status line
stage-text-encoder = text encoder
stage-unet = UNet
stage-vae = VAE
stage-files = files
status-loading = Loading { $name } — { $stage }…
speed-seconds-per-step = { $value } s/it
speed-steps-per-second = { $value } it/s
status-decoding = Decoding…
status-starting = Starting…
status-step = Step { $step }/{ $total } · { $speed } · ETA { $eta }
status-image = Image { $image }/{ $batch } · { $progress }
status-queued = { $count ->
    [one] · { $count } job queued
   *[other] · { $count } jobs queued
}
status-ready = Ready

## Messages
model-ready = Model ready: { $name }
model-ready-applied = Model ready: { $name }; { $applied }.
recommended-applied = applied { $from }'s recommended settings: { $steps ->
    [one] { $steps } step
   *[other] { $steps } steps
}, guidance { $guidance }, { $sampler }, { $size }
load-failed = Could not load { $name }: { $message }
choose-model-first = Choose a model first.
cancelling = Cancelling…
cancelled = Cancelled.
image-copied = Image copied to the clipboard.
prompt-copied = Prompt copied to the clipboard.
file-manager-failed = Could not open the file manager ({ $reason }); the file is { $path }
settings-restored = Settings restored (seed { $seed }).
settings-restored-from = Settings restored from { $source } (seed { $seed }).
restore-source-history = the history
restored-switched-model = { $restored } Switched to the model { $name }.
restored-unknown-model = { $restored } It was made with the model “{ $name }”, which is not among your model folders; open that model to make the same picture.
png-image = PNG image
save-as-no-file = no file was chosen (or no file dialog is available on this system)
saved = Saved { $path }
saved-copy = Saved a copy to { $path }
not-saved = Not saved: { $reason }
image-not-saved = The image could not be saved: { $reason }
open-model-folder-title = Open a model folder
no-file-dialog = No file dialog is available on this system. Type or paste the model folder's path:
open = Open
notice-downloaded = { $name } downloaded. Choose it with “Use { $name }”.
notice-download-failed = { $name }: { $reason }
notice-download-cancelled = { $name }: download cancelled; what was fetched is kept for resuming.
notice-scan-failed = Looking for models failed: { $reason }
download-started = Downloading { $name }…
download-refused = Cannot download { $name }: { $reason }
drop-not-png = { $name } is not a PNG image; drop a PNG made by Lantern or AUTOMATIC1111.
drop-no-settings = { $name } has no generation settings in it (only PNGs made by Lantern or AUTOMATIC1111 carry them).
drop-unreadable = { $name } could not be read ({ $reason }).
drop-unparseable = { $name } carries settings Lantern cannot read ({ $reason }).
file-moved-or-deleted = The file was moved or deleted.
history-notice = The { $notice }.
history-open-failed = The history could not be opened: { $reason }
favourite-failed = Could not change the favourite: { $reason }
deleted-entry-and-file = Deleted the entry and its file.
deleted-entry = Deleted the entry (the file is kept).
entry-already-gone = That entry was already gone.
not-deleted = Not deleted: { $reason }
history-error = History: { $reason }

## Image view
image-empty-hint = Type a prompt and press Ctrl+Enter
zoom-fit = Fit
save-as = Save as…
copy-image = Copy
image-summary = { $width }×{ $height } · seed { $seed } · { $steps } steps · CFG { $cfg }
image-seed = seed { $seed }

## First screen
welcome-title = Welcome to Lantern
welcome-intro = Lantern draws pictures with a Stable Diffusion model, and there is no model to use yet. Pick one of the ways below to get one; it is a one-time step.
welcome-load-failed-hint = Choose another model below, or repair that folder (e.g. download it again) and open it once more.
welcome-on-disk = Models on this computer
welcome-scanning = Looking in the weights/ folder, Lantern's models folder and the Hugging Face cache…
welcome-none-found = None found: nothing in the weights/ folder, Lantern's models folder or the Hugging Face cache.
welcome-found = { $count ->
    [one] Found { $count } model ({ $usable } ready to use). Choose one:
   *[other] Found { $count } models ({ $usable } ready to use). Choose one:
}
welcome-download = Download a model
welcome-download-note = Files go to the shared Hugging Face cache, so Python tools can use them too. A download that stops can be resumed.
downloads-unavailable = Downloads are unavailable: { $problem }
welcome-manage = Another Hugging Face repo, or manage models…
welcome-manage-tip = Opens the model manager: any diffusers repo by its id, downloads, models on disk
welcome-own-folder = Use a model folder you already have
welcome-own-folder-note = A folder in the diffusers layout: it holds model_index.json, unet/, vae/, text_encoder/, tokenizer/ and scheduler/.
welcome-paste-path = or paste its path:
welcome-path-hint = /path/to/model
welcome-use-folder = Use this folder

## Models
model-not-recognised = { $path } (not recognised as a model folder by the last scan)
model-incomplete = Incomplete: { $problems }
scan-running = Looking for models…
scan-none = No models found on this computer.
scan-found = { $count ->
    [one] { $count } model found.
   *[other] { $count } models found.
}
model-in-use = In use
use-model = Use { $name }
model-details-incomplete = { $details } · incomplete
catalog-download = Download { $name } — { $size }
catalog-license = License: { $license } · { $repo }
download-connecting = { $name }: connecting to the model server…
download-finished = { $name } downloaded ({ $size }).
preview-decoder-ready = Previews and Draft decode of its family use it now.
preview-decoders-heading = Preview decoders (TAESD)
preview-decoders-note = A tiny autoencoder per model family: live previews close to the final picture, and Draft decode. Each family's is used by itself once installed.
preview-decoder-installed = { $name } — { $family }
preview-decoder-for-sd = SD 1.x, 2.x and SD-Turbo
preview-decoder-for-sdxl = SDXL and SDXL-Turbo
download-cancelled-at = { $name }: cancelled at { $size }. What was fetched is kept.
downloading = Downloading { $name }
download-resumed = (resumed, { $size } were already here)
download-file-progress = file { $index }/{ $count }: { $file } · { $done } of { $size }
download-resume = Resume { $name }
download-try-again = Try again
download-repo-note = Only the diffusers components in safetensors form are fetched, into the shared Hugging Face cache.
download-amount = { $done } of { $total }
time-left = { $time } left
offline-headline = You seem to be offline: the model server could not be reached.
source-project-weights = project weights/ folder
source-data-dir = Lantern's models folder
source-user-folder = your folder
source-hf-cache = Hugging Face cache: { $repo }

## History
date-any = Any date
date-today = Today
date-last-7-days = Last 7 days
date-last-30-days = Last 30 days
history-matches = { $count ->
    [one] { $shown } match
   *[other] { $shown } matches
}
unknown-model = (unknown model)
history-query-time = query took { $ms } ms
history-unavailable = The history cannot be shown: { $error }
history-empty = No pictures yet. Everything you generate appears here.
history-no-matches = Nothing matches these filters.
history-cell = { $prompt } · seed { $seed }
thumb-file-missing = File missing
thumb-unreadable = Unreadable
not-recorded = (not recorded)
batch-position = image { $index } of { $count }
seconds = { $value } s
delete-entry-and-file = Delete entry and file
delete-entry = Delete entry
drop-hint = Drop a PNG to reuse its settings, or any picture to start from it

## Labels and buttons
open-a-model-folder = Open a model folder…
rescan = Rescan
manage-and-download-models = Manage and download models…
models = Models
downloads = Downloads
on-this-computer = On this computer
where-lantern-looked = Where Lantern looked
fetches-only-what-is-missing-partial = Fetches only what is missing; partial files are continued
download-a-known-model = Download a known model
suggested-for-this-computer = Suggested for this computer
stops-now-a-later-download-continues = Stops now; a later download continues where this one stopped
continues-from-the-partial-files-if = Continues from the partial files, if any
dismiss = Dismiss
any-diffusers-model-on-the-hugging = Any diffusers model on the Hugging Face Hub
repo-id = Repo id
org-name = org/name
download-repo = Download repo
create = Create
history = History
drop-a-png-on-the-window = Drop a PNG on the window to reuse its settings, or a picture to start from
search = Search
words-from-the-prompt-any-language = words from the prompt, any language
clear = Clear
model = Model
all-models = All models
date = Date
favourites-only = Favourites only
picture = Picture
close = Close
the-image-file-is-not-available = The image file is not available
its-settings-can-still-be-used = Its settings can still be used.
restore-every-parameter-the-seed-and = Restore every parameter, the seed and the model
restore-the-settings-and-generate = Restore the settings and generate
favourite = Favourite
copy-prompt = Copy prompt
show-in-folder = Show in folder
delete = Delete…
prompt = Prompt
negative-prompt = Negative prompt
seed = Seed
steps = Steps
sampler = Sampler
cfg-scale = CFG scale
size = Size
batch = Batch
made = Made
took = Took
file = File
delete-this-picture-from-the-history = Delete this picture from the history?
also-delete-the-file = Also delete the file
cancel = Cancel
resume-download = Resume download
use-these-settings = Use these settings
re-run = Re-run

## The model catalog's descriptions (assets/models.toml has the same English text)
catalog-sd-turbo-description = Distilled SD 2.1: usable 512x512 images in 1 step. The fastest start on a CPU.
catalog-sd15-description = The classic 512x512 model with the largest ecosystem of fine-tunes.
catalog-sd21-description = 768x768 v-prediction model with the OpenCLIP text encoder.
catalog-sdxl-description = 1024x1024, two text encoders; much better prompts, slow on a CPU.
catalog-sdxl-turbo-description = Distilled SDXL: 512x512 in 1-4 steps with SDXL's prompt understanding.
catalog-taesd-description = Tiny autoencoder: live previews close to the final picture, and Draft decode, for SD 1.x, 2.x and SD-Turbo.
catalog-taesdxl-description = Tiny autoencoder: live previews close to the final picture, and Draft decode, for SDXL and SDXL-Turbo.

## Language
language-tip = The window's language
no-cjk-font = No Chinese font found: install fonts-noto-cjk (Debian/Ubuntu), google-noto-sans-cjk-fonts (Fedora) or noto-fonts-cjk (Arch), then restart Lantern.
sampler-model-default = Model default
catalog-unavailable = the model catalog is unavailable
already-downloading = { $repo } is already downloading

## About
about-button = About
about-title = About Lantern
about-tagline = Local text-to-image with Stable Diffusion. Your pictures and prompts stay on this computer.
about-version = Version
about-platform = Platform
about-devices = Runs on
about-data-folder = Data folder
about-outputs = Pictures saved to
about-language = Language
about-copy = Copy these details

## LoRA browser
loras-toggle = LoRAs
loras-toggle-tip = Browse your LoRA files and add them to the prompt
loras-toggle-tip-used = { $count ->
    [one] The prompt uses { $count } LoRA. Browse your LoRA files and add them to the prompt
   *[other] The prompt uses { $count } LoRAs. Browse your LoRA files and add them to the prompt
}
loras-heading = LoRA browser
loras-count = { $count ->
    [one] { $count } LoRA found
   *[other] { $count } LoRAs found
}
loras-rescan-tip = Look for models and LoRA files again
loras-open-folder = Open folder
lora-weight-label = Weight
lora-weight-tip = The weight a click writes into the tag (1 = as trained; negative weights push the other way)
lora-weight-reset = Reset
lora-weight-reset-tip = Back to 1 (the strength it was trained at)
loras-click-hint = Click a LoRA to add { $tag } to the prompt; click it again to change the weight.
loras-in-prompt = In this prompt
lora-remove-tip = Take { $name } out of the prompt
lora-not-found-tip = Not found: put the file in { $folder } (or a Lora folder beside your models), then Rescan.
loras-filter-label = Filter
loras-filter-hint = part of a name
loras-no-match = No LoRA name has “{ $filter }”.
loras-scanning = Looking for LoRA files…
loras-none = No LoRA files found.
loras-none-where = Put LoRA files (.safetensors) in { $folder }, or in a Lora or loras folder beside your models, then press Rescan.
lora-family-unknown = unknown family
lora-family-sd-1-or-2 = SD 1.x or 2.x
lora-not-a-lora = not a LoRA
lora-not-a-lora-tip = This file is not a LoRA (or cannot be read), so it cannot be added.
lora-wrong-family = made for { $lora }; this model is { $model }
lora-details-other-family = { $family } · { $size } · not for this model
lora-add-tip = Click to add { $tag } to the prompt
lora-set-weight-tip = In the prompt. Click to make it { $tag }
lora-refused = { $name } was not added: { $reason }.
loras-missing = Missing LoRAs: { $names } — put them in { $folder }, then press Rescan.

## Start picture (img2img, inpainting)
start-heading = Start from a picture
start-heading-active = Start from a picture (img2img)
start-drop-hint = Drop a picture on the window, or open one:
start-open = Open picture…
start-open-tip = Start from a picture file (PNG, JPEG, WebP, GIF or BMP)
start-clear = Clear
start-clear-tip = Back to text-to-image
start-mask-open = Mask…
start-mask-open-tip = Inpaint: a picture that is white where to repaint and black where to keep (any size)
start-mask-invert = Invert mask
start-mask-clear = Clear mask
start-preview-tip = The picture the next job starts from; red shows where the mask repaints.
start-size = { $width }×{ $height }
start-size-mask = { $width }×{ $height }, with a mask
start-loading = Reading the picture…
strength-label = Denoising strength
strength-tip = How much of the picture is redrawn: 0.3 keeps its layout and colours, 0.8 keeps little of it. The last steps × strength steps run.
strength-steps = runs { $run } of { $steps } steps
resize-mode-label = Resize mode
resize-mode-tip = How a picture of another shape meets the size: stretched, cropped to cover it, or fitted inside with the edges extended.
resize-stretch = Stretch
resize-crop = Crop
resize-fill = Fit and fill
mask-blur-label = Mask blur
mask-blur-tip = Softens the mask's edge so the repainted part blends in.
keep-unmasked = Keep unmasked pixels exactly
keep-unmasked-tip = Paste the original back outside the mask (as A1111 does). Off: every pixel comes from the model's decoder, as diffusers returns it.
start-from-result = Starting from the shown picture.
start-loaded = Starting from { $name }.
start-mask-loaded = Mask { $name } loaded: white is repainted.
start-mask-inverted = Mask inverted.
start-mask-cleared = Mask cleared: the whole picture is redrawn.
start-cleared = Start picture cleared: back to text-to-image.
start-restored = The start picture of that job is back.
start-failed = Could not use the picture: { $reason }
start-still-loading = The start picture is still loading; try again in a moment.
start-open-title = Open a picture to start from
start-open-mask-title = Open a mask (white = repaint)
start-file-filter = Pictures
use-as-start = Start from this
use-as-start-tip = Use this picture as the start of img2img or inpainting
start-mask-paint = Paint mask
start-mask-paint-tip = Paint over the picture where it should be repainted (inpainting)
mask-painter-heading = Mask
mask-painter-hint = Drag over the picture to paint where it is redrawn; red shows the mask.
brush-size = Brush
brush-paint = Paint
brush-erase = Erase
undo = Undo
redo = Redo
mask-clear-all = Clear
mask-done = Done
mask-kept = Mask kept: the red part is repainted, the rest kept.

## Hires fix
hires-heading = Hires fix
hires-heading-on = Hires fix (on: { $width }×{ $height })
hires-enable = Make it larger with a second pass
hires-enable-tip = AUTOMATIC1111's hires fix: the picture is made at the size above, scaled up, then redrawn at the larger size. How a CPU gets a sharp 1024×1024 from an SD 1.5 model.
hires-scale-label = Upscale by
hires-steps-label = Hires steps
hires-steps-tip = The steps of the second pass; 0 = as many as Steps.
hires-upscaler-label = Upscaler
hires-upscaler-latent = Latent (bilinear)
hires-upscaler-nearest = Latent (nearest)
hires-upscaler-lanczos = Lanczos (picture)
hires-upscaler-tip = Latent scales the latents (fast; wants a strength of 0.5 or more). Lanczos scales the decoded picture and keeps it closely at low strengths.
hires-strength-tip = How much the second pass redraws: 0.3 keeps the first picture, 0.7 adds new detail.
hires-not-with-start = Hires fix is for text-to-image; with a start picture, set a larger size instead.
outpaint-label = Extend
outpaint-tip = Outpaint: the arrows add this many pixels on their side; the new part is painted, the rest kept.
outpaint-side-tip = Extend the canvas { $px } px to the { $side }
side-left = left
side-top = top
side-bottom = bottom
side-right = right
start-extended = Canvas extended to { $width }×{ $height }: the new part will be painted.
started-from = Started from
started-from-masked = Started from (red: the mask)
start-not-kept = The start picture is not in the data folder any more ({ $reason }).
