# Toy texture scenes made in memory on first use (nothing downloaded or
# stored): see mmdynopool/datasets/toy_scenes.py. The variant configs set
# `train_dataloader.dataset.variant` and `val_dataloader.dataset.variant`.
dataset_type = 'ToySceneDataset'
variant = 'plain'
scene_size = (64, 64)
train_pipeline = [dict(type='LoadToyScene'), dict(type='PackSegInputs')]
test_pipeline = [dict(type='LoadToyScene'), dict(type='PackSegInputs')]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        variant=variant,
        split='train',
        num_samples=4000,
        seed=0,
        size=scene_size,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        variant=variant,
        split='val',
        num_samples=256,
        seed=0,
        size=scene_size,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
