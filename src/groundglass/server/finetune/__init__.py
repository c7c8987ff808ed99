"""DreamBooth as a service: uploads, the job queue and its worker, image generation, and their routes."""
