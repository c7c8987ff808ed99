"""Grounded answers: plan -> search -> read -> rank -> write -> cite."""
