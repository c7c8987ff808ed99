"""DreamBooth: personalise a Stable Diffusion model from a few photos of a subject."""
