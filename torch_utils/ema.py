"""Exponential moving average of a module's parameters.

Effective decay after n updates is min(decay, (1 + n) / (10 + n)), as in the
torch_ema library the original pi-GAN used, so early averages warm up quickly.
"""

import torch


class ExponentialMovingAverage:
    def __init__(self, module, decay):
        self.decay = decay
        self.num_updates = 0
        self.shadow = {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}
        self._stored = None

    def _pairs(self, module):
        params = dict(module.named_parameters())
        return [(self.shadow[name], params[name]) for name in self.shadow]

    @torch.no_grad()
    def update(self, module):
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for shadow, param in self._pairs(module):
            shadow.sub_((shadow - param.detach()) * (1 - decay))

    @torch.no_grad()
    def copy_to(self, module):
        for shadow, param in self._pairs(module):
            param.copy_(shadow)

    @torch.no_grad()
    def store(self, module):
        self._stored = [param.detach().clone() for _, param in self._pairs(module)]

    @torch.no_grad()
    def restore(self, module):
        for stored, (_, param) in zip(self._stored, self._pairs(module)):
            param.copy_(stored)
        self._stored = None

    def state_dict(self):
        return {'decay': self.decay, 'num_updates': self.num_updates, 'shadow': dict(self.shadow)}

    def load_state_dict(self, state):
        missing = set(self.shadow) - set(state['shadow'])
        if missing:
            raise KeyError(f"EMA state lacks parameters {sorted(missing)[:3]}...")
        self.decay = state['decay']
        self.num_updates = state['num_updates']
        for name, value in state['shadow'].items():
            self.shadow[name].copy_(value)


class averaged_weights:
    """Context manager: `with averaged_weights(ema, module):` runs with the EMA weights."""

    def __init__(self, ema, module):
        self.ema, self.module = ema, module

    def __enter__(self):
        self.ema.store(self.module)
        self.ema.copy_to(self.module)
        return self.module

    def __exit__(self, *exc):
        self.ema.restore(self.module)
