"""Every config key crosskd knows: the ones it reads (with their JSON types) and the ones of
the original format it accepts and ignores (with the reason).

`*` stands for any name: an expert (`imagenet.senet154.0`), "text", a feature type. A key
that is neither here nor below an open or ignored section is refused with the closest
known key (crosskd.config.known). `eval_settings` may hold any top-level key but itself. To add a key: add its row here, read it in the part
that uses it (crosskd.config.parts / experiment), and name it in docs/USAGE.md.
"""

from __future__ import annotations

NULL = type(None)
NUMBER = (int, float)
ANY = (object,)

#: keys crosskd reads, with the JSON types accepted (ints count as numbers, bools never do).
USED: dict[str, tuple[type, ...]] = {
    "seed": (int,),
    "experts": (dict, NULL),
    "experts.modalities": (list,),
    "experts.drop_feats": (str, NULL),
    "experts.text_feat": (str,),
    "experts.ce_shared_dim": (int, NULL),
    "experts.face_dim": (int,),
    "arch": (dict, NULL),
    "arch.type": (str, NULL),
    "arch.args": (dict, NULL),
    "arch.args.use_ce": (str,),
    "arch.args.num_g_layers": (int,),
    "arch.args.vlad_clusters": (dict,),
    "arch.args.vlad_clusters.*": (int, NULL),
    "arch.args.ghost_clusters": (dict, NULL),
    "arch.args.ghost_clusters.*": (int,),
    # ablations of the original: accepted only at their published value (models.ce_net)
    **{f"arch.args.{key}": ANY for key in (
        "use_mish", "use_bn_reason", "num_h_layers", "include_self", "l2renorm",
        "keep_missing_modalities", "test_caption_mode", "randomise_feats", "mimic_ce_dims")},
    "data_loader": (dict,),
    "data_loader.args": (dict,),
    "data_loader.args.batch_size": (int,),
    "data_loader.args.data_dir": (str,),
    "data_loader.args.dataset_name": (str,),
    "data_loader.args.split_name": (str,),
    "data_loader.args.root_feat_folder": (str,),
    "data_loader.args.fuse_captions": (bool, int),
    "data_loader.args.num_test_captions": (int,),
    "data_loader.args.max_tokens": (dict, NULL),
    "data_loader.args.max_tokens.*": (int,),
    "data_loader.args.feat_aggregation": (dict, NULL),
    "data_loader.args.feat_aggregation.*": (dict,),
    "data_loader.args.feat_aggregation.*.temporal": (str,),
    "data_loader.args.feat_aggregation.*.type": (str,),
    "data_loader.args.feat_aggregation.*.feat_dims": (dict,),
    "data_loader.args.feat_aggregation.*.feat_dims.*": (int,),
    # these name an expert's file (crosskd.data.layouts.visual_feat_paths)
    **{f"data_loader.args.feat_aggregation.*.{key}": (int, str, NULL) for key in (
        "fps", "pixel_dim", "stride", "offset", "inner_stride", "num_segments")},
    # options of the original refused when switched on (no published config does)
    "data_loader.args.feat_aggregation.*.binarise": ANY,
    **{f"data_loader.args.{key}": ANY for key in (
        "text_dropout", "restrict_train_captions", "caption_masks", "trn_cat")},
    "distil_loss": (bool,),
    "distil_params": (dict, NULL),
    "distil_params.base_path": (str, NULL),
    "distil_params.teachers": (list,),
    "loss": (dict, NULL),
    "loss.type": (str,),
    "loss.args": (dict, NULL),
    "loss.args.margin": NUMBER,
    "loss.args.fix_norm": (bool,),
    "ranking_loss": (bool,),
    "ranking_params": (dict,),
    **{f"ranking_params.{key}": NUMBER for key in ("cap_w", "cap_t", "vid_w", "vid_t")},
    "ranking_params.detach_target": (bool,),
    "optimizer": (dict,),
    "optimizer.type": (str,),
    "lr_scheduler": (dict, NULL),
    "lr_scheduler.type": (str,),
    "trainer": (dict, NULL),
    "trainer.epochs": (int,),
    "trainer.val_freq": (int,),
    "trainer.save_period": (int,),
    "trainer.save_dir": (str,),
    "trainer.tensorboard": (bool, int),
    "trainer.monitor": (str,),
    "trainer.amp": (str, NULL),
    "trainer.compile": (bool,),
    "trainer.cuda_graphs": (str, bool),
    "trainer.optimizer_in_backward": (bool, NULL),
    "trainer.resident_data": (str, bool),
    "trainer.background_checkpoints": (bool, NULL),
    "trainer.cpu_matmul": (str,),
    "eval_settings": (dict, NULL),
    # QB-Norm in the test (crosskd.config.evaluation): true, {} or {"beta": B}; null/false off
    "qbnorm": (dict, bool, NULL),
    "qbnorm.beta": NUMBER,
}

#: sections whose keys are not listed here: the builder they go to checks them before any
#: data is read (an optimizer's or scheduler's keyword arguments, probed by crosskd.optim).
OPEN: dict[str, tuple[type, ...]] = {
    "optimizer.args": (dict,),
    "lr_scheduler.args": (dict, NULL),
}

#: keys of the original format that crosskd accepts and does not use, and why.
IGNORED: dict[str, str] = {
    "inherit_from": "resolved when the file is read; a merged config may still name it",
    "n_gpu": "the original's GPU count; choose the device with --device",
    "log_name": "the original's log file; each run logs into its own folder",
    "metrics": "the original's metric list; t2v and v2t metrics are always reported",
    "visualizer": "the original's ranking visualiser, not part of crosskd",
    "disable_nan_checks": "a non-finite loss always stops training",
    "eval_mode": "the original's test_run mode; the final test always uses model_best.pth",
    "text_embedding_model_configs": "where the original found its text models; crosskd "
                                    "reads precomputed text features",
    "experts.text_agg": "caption pooling; the original's configs all use vlad, the only "
                        "one crosskd builds",
    "data_loader.type": "the original's loader class; crosskd has one loader",
    "data_loader.args.num_workers": "loader processes; batches are cut from the packed "
                                    "store in the training process",
    "data_loader.args.refresh_lru_cache": "the original's feature cache; crosskd maps a "
                                          "packed store (--cache_dir)",
    "data_loader.args.feat_aggregation.*.model": "a note of the original; the file name "
                                                 "comes from the expert's name",
    "data_loader.args.feat_aggregation.*.flaky": "missing features are always allowed "
                                                 "(zeroed, marked unavailable)",
    "data_loader.args.feat_aggregation.*.aggregate": "several statistics are always "
                                                     "concatenated",
    "data_loader.args.feat_aggregation.*.aggregate-axis": "statistics are concatenated on "
                                                          "the feature axis",
    "data_loader.args.feat_aggregation.*.feat_type": "the detection expert's feature kind; "
                                                     "no crosskd layout reads it",
    "trainer.save_only_best": "crosskd keeps model_best.pth and checkpoint_last.pth",
    "trainer.verbosity": "the original's log level; crosskd logs through Python logging",
    # the original tester's settings, which `eval_settings` holds and merges to the top
    "tester": "the original tester's output folder and log level; `test --out` writes "
              "the metrics",
    "disable_gpu": "choose the device with --device",
}
