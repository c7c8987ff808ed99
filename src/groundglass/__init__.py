"""groundglass: grounded answers with citations, and DreamBooth fine-tuning."""

__version__ = "0.1.0"
