"""The paper's networks: the PWM generator and the PatchGAN discriminator (DESIGN §2.4)."""
