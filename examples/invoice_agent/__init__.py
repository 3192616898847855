"""An invoice-paying LangGraph agent gated by Signoff (see README.md)."""
