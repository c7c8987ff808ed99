"""A toy world where DreamBooth can be seen working on a CPU.

``generator`` draws the world (32 px coloured shapes on grey patterned backgrounds, with captions);
``base_model/`` is an embedded Stable-Diffusion-layout model pretrained on it (``pretrain``; its VAE
decoder then also learns the star, ``vae_tune``, as a real autoencoder can draw any subject);
``classifier`` is the measurement model and ``metrics`` the paper's measurements by analogy;
``subject`` is the novel subject (an orange star); ``personalise`` runs the project's DreamBooth
trainer on it and ``demo`` is ``groundglass dreambooth demo``; ``tracking`` measures fidelity during
training (the world's metrics, and CLIP-I / CLIP-T / DINO when those models are given) and keeps the
best step.
"""
