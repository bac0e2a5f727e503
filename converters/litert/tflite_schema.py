"""The TFLite flatbuffer schema, as :mod:`converters.litert.flatbuffer` walks it: plain data.

Derived from ai-edge-litert 1.4.0's ``schema_py_generated.py`` (the generated reader of
``schema.fbs``); ``tests/test_flatbuffer.py`` derives it again from the installed package and requires
the same table (``python tests/test_flatbuffer.py`` prints it).

``TABLES``: table -> its fields ``(slot, name, kind, arg)``; kinds: ``s`` a scalar of ``arg`` bytes,
``str`` a string, ``t`` a table ``arg``, ``u`` a union ``arg`` (its type is the scalar ``<name>Type``),
``v`` a vector of ``arg``-byte scalars, ``vs`` a vector of strings, ``vt`` a vector of tables ``arg``.
``UNIONS``: union -> type value -> table (tables without fields are absent from ``TABLES``).
"""

TABLES = {
    'AddOptions': (
        (0, 'FusedActivationFunction', 's', 1),
        (1, 'PotScaleInt16', 's', 1),
    ),
    'ArgMaxOptions': (
        (0, 'OutputType', 's', 1),
    ),
    'ArgMinOptions': (
        (0, 'OutputType', 's', 1),
    ),
    'BatchMatMulOptions': (
        (0, 'AdjX', 's', 1),
        (1, 'AdjY', 's', 1),
        (2, 'AsymmetricQuantizeInputs', 's', 1),
    ),
    'BidirectionalSequenceLSTMOptions': (
        (0, 'FusedActivationFunction', 's', 1),
        (1, 'CellClip', 's', 4),
        (2, 'ProjClip', 's', 4),
        (3, 'MergeOutputs', 's', 1),
        (4, 'TimeMajor', 's', 1),
        (5, 'AsymmetricQuantizeInputs', 's', 1),
    ),
    'BidirectionalSequenceRNNOptions': (
        (0, 'TimeMajor', 's', 1),
        (1, 'FusedActivationFunction', 's', 1),
        (2, 'MergeOutputs', 's', 1),
        (3, 'AsymmetricQuantizeInputs', 's', 1),
    ),
    'BlockwiseQuantization': (
        (0, 'Scales', 's', 4),
        (1, 'ZeroPoints', 's', 4),
        (2, 'BlockSize', 's', 4),
    ),
    'BucketizeOptions': (
        (0, 'Boundaries', 'v', 4),
    ),
    'Buffer': (
        (0, 'Data', 'v', 1),
        (1, 'Offset', 's', 8),
        (2, 'Size', 's', 8),
    ),
    'CallOnceOptions': (
        (0, 'InitSubgraphIndex', 's', 4),
    ),
    'CallOptions': (
        (0, 'Subgraph', 's', 4),
    ),
    'CastOptions': (
        (0, 'InDataType', 's', 1),
        (1, 'OutDataType', 's', 1),
    ),
    'ConcatEmbeddingsOptions': (
        (0, 'NumChannels', 's', 4),
        (1, 'NumColumnsPerChannel', 'v', 4),
        (2, 'EmbeddingDimPerChannel', 'v', 4),
    ),
    'ConcatenationOptions': (
        (0, 'Axis', 's', 4),
        (1, 'FusedActivationFunction', 's', 1),
    ),
    'Conv2DOptions': (
        (0, 'Padding', 's', 1),
        (1, 'StrideW', 's', 4),
        (2, 'StrideH', 's', 4),
        (3, 'FusedActivationFunction', 's', 1),
        (4, 'DilationWFactor', 's', 4),
        (5, 'DilationHFactor', 's', 4),
        (6, 'QuantizedBiasType', 's', 1),
    ),
    'Conv3DOptions': (
        (0, 'Padding', 's', 1),
        (1, 'StrideD', 's', 4),
        (2, 'StrideW', 's', 4),
        (3, 'StrideH', 's', 4),
        (4, 'FusedActivationFunction', 's', 1),
        (5, 'DilationDFactor', 's', 4),
        (6, 'DilationWFactor', 's', 4),
        (7, 'DilationHFactor', 's', 4),
    ),
    'CumsumOptions': (
        (0, 'Exclusive', 's', 1),
        (1, 'Reverse', 's', 1),
    ),
    'CustomQuantization': (
        (0, 'Custom', 'v', 1),
    ),
    'DepthToSpaceOptions': (
        (0, 'BlockSize', 's', 4),
    ),
    'DepthwiseConv2DOptions': (
        (0, 'Padding', 's', 1),
        (1, 'StrideW', 's', 4),
        (2, 'StrideH', 's', 4),
        (3, 'DepthMultiplier', 's', 4),
        (4, 'FusedActivationFunction', 's', 1),
        (5, 'DilationWFactor', 's', 4),
        (6, 'DilationHFactor', 's', 4),
    ),
    'DimensionMetadata': (
        (0, 'Format', 's', 1),
        (1, 'DenseSize', 's', 4),
        (2, 'ArraySegmentsType', 's', 1),
        (3, 'ArraySegments', 'u', 'SparseIndexVector'),
        (4, 'ArrayIndicesType', 's', 1),
        (5, 'ArrayIndices', 'u', 'SparseIndexVector'),
    ),
    'DivOptions': (
        (0, 'FusedActivationFunction', 's', 1),
    ),
    'EmbeddingLookupSparseOptions': (
        (0, 'Combiner', 's', 1),
    ),
    'FakeQuantOptions': (
        (0, 'Min', 's', 4),
        (1, 'Max', 's', 4),
        (2, 'NumBits', 's', 4),
        (3, 'NarrowRange', 's', 1),
    ),
    'FullyConnectedOptions': (
        (0, 'FusedActivationFunction', 's', 1),
        (1, 'WeightsFormat', 's', 1),
        (2, 'KeepNumDims', 's', 1),
        (3, 'AsymmetricQuantizeInputs', 's', 1),
        (4, 'QuantizedBiasType', 's', 1),
    ),
    'GatherOptions': (
        (0, 'Axis', 's', 4),
        (1, 'BatchDims', 's', 4),
    ),
    'GeluOptions': (
        (0, 'Approximate', 's', 1),
    ),
    'HashtableOptions': (
        (0, 'TableId', 's', 4),
        (1, 'KeyDtype', 's', 1),
        (2, 'ValueDtype', 's', 1),
    ),
    'IfOptions': (
        (0, 'ThenSubgraphIndex', 's', 4),
        (1, 'ElseSubgraphIndex', 's', 4),
    ),
    'Int32Vector': (
        (0, 'Values', 'v', 4),
    ),
    'L2NormOptions': (
        (0, 'FusedActivationFunction', 's', 1),
    ),
    'LSHProjectionOptions': (
        (0, 'Type', 's', 1),
    ),
    'LSTMOptions': (
        (0, 'FusedActivationFunction', 's', 1),
        (1, 'CellClip', 's', 4),
        (2, 'ProjClip', 's', 4),
        (3, 'KernelType', 's', 1),
        (4, 'AsymmetricQuantizeInputs', 's', 1),
    ),
    'LeakyReluOptions': (
        (0, 'Alpha', 's', 4),
    ),
    'LocalResponseNormalizationOptions': (
        (0, 'Radius', 's', 4),
        (1, 'Bias', 's', 4),
        (2, 'Alpha', 's', 4),
        (3, 'Beta', 's', 4),
    ),
    'Metadata': (
        (0, 'Name', 'str', 0),
        (1, 'Buffer', 's', 4),
    ),
    'MirrorPadOptions': (
        (0, 'Mode', 's', 1),
    ),
    'Model': (
        (0, 'Version', 's', 4),
        (1, 'OperatorCodes', 'vt', 'OperatorCode'),
        (2, 'Subgraphs', 'vt', 'SubGraph'),
        (3, 'Description', 'str', 0),
        (4, 'Buffers', 'vt', 'Buffer'),
        (5, 'MetadataBuffer', 'v', 4),
        (6, 'Metadata', 'vt', 'Metadata'),
        (7, 'SignatureDefs', 'vt', 'SignatureDef'),
    ),
    'MulOptions': (
        (0, 'FusedActivationFunction', 's', 1),
    ),
    'OneHotOptions': (
        (0, 'Axis', 's', 4),
    ),
    'Operator': (
        (0, 'OpcodeIndex', 's', 4),
        (1, 'Inputs', 'v', 4),
        (2, 'Outputs', 'v', 4),
        (3, 'BuiltinOptionsType', 's', 1),
        (4, 'BuiltinOptions', 'u', 'BuiltinOptions'),
        (5, 'CustomOptions', 'v', 1),
        (6, 'CustomOptionsFormat', 's', 1),
        (7, 'MutatingVariableInputs', 'v', 1),
        (8, 'Intermediates', 'v', 4),
        (9, 'LargeCustomOptionsOffset', 's', 8),
        (10, 'LargeCustomOptionsSize', 's', 8),
        (11, 'BuiltinOptions2Type', 's', 1),
        (12, 'BuiltinOptions2', 'u', 'BuiltinOptions2'),
        (13, 'DebugMetadataIndex', 's', 4),
    ),
    'OperatorCode': (
        (0, 'DeprecatedBuiltinCode', 's', 1),
        (1, 'CustomCode', 'str', 0),
        (2, 'Version', 's', 4),
        (3, 'BuiltinCode', 's', 4),
    ),
    'PackOptions': (
        (0, 'ValuesCount', 's', 4),
        (1, 'Axis', 's', 4),
    ),
    'Pool2DOptions': (
        (0, 'Padding', 's', 1),
        (1, 'StrideW', 's', 4),
        (2, 'StrideH', 's', 4),
        (3, 'FilterWidth', 's', 4),
        (4, 'FilterHeight', 's', 4),
        (5, 'FusedActivationFunction', 's', 1),
    ),
    'QuantizationParameters': (
        (0, 'Min', 'v', 4),
        (1, 'Max', 'v', 4),
        (2, 'Scale', 'v', 4),
        (3, 'ZeroPoint', 'v', 8),
        (4, 'DetailsType', 's', 1),
        (5, 'Details', 'u', 'QuantizationDetails'),
        (6, 'QuantizedDimension', 's', 4),
    ),
    'RNNOptions': (
        (0, 'FusedActivationFunction', 's', 1),
        (1, 'AsymmetricQuantizeInputs', 's', 1),
    ),
    'RandomOptions': (
        (0, 'Seed', 's', 8),
        (1, 'Seed2', 's', 8),
    ),
    'ReduceWindowOptions': (
        (0, 'ReduceFunction', 's', 4),
    ),
    'ReducerOptions': (
        (0, 'KeepDims', 's', 1),
    ),
    'ReshapeOptions': (
        (0, 'NewShape', 'v', 4),
    ),
    'ResizeBilinearOptions': (
        (2, 'AlignCorners', 's', 1),
        (3, 'HalfPixelCenters', 's', 1),
    ),
    'ResizeNearestNeighborOptions': (
        (0, 'AlignCorners', 's', 1),
        (1, 'HalfPixelCenters', 's', 1),
    ),
    'ReverseSequenceOptions': (
        (0, 'SeqDim', 's', 4),
        (1, 'BatchDim', 's', 4),
    ),
    'SVDFOptions': (
        (0, 'Rank', 's', 4),
        (1, 'FusedActivationFunction', 's', 1),
        (2, 'AsymmetricQuantizeInputs', 's', 1),
    ),
    'SequenceRNNOptions': (
        (0, 'TimeMajor', 's', 1),
        (1, 'FusedActivationFunction', 's', 1),
        (2, 'AsymmetricQuantizeInputs', 's', 1),
    ),
    'ShapeOptions': (
        (0, 'OutType', 's', 1),
    ),
    'SignatureDef': (
        (0, 'Inputs', 'vt', 'TensorMap'),
        (1, 'Outputs', 'vt', 'TensorMap'),
        (2, 'SignatureKey', 'str', 0),
        (4, 'SubgraphIndex', 's', 4),
    ),
    'SkipGramOptions': (
        (0, 'NgramSize', 's', 4),
        (1, 'MaxSkipSize', 's', 4),
        (2, 'IncludeAllNgrams', 's', 1),
    ),
    'SoftmaxOptions': (
        (0, 'Beta', 's', 4),
    ),
    'SpaceToDepthOptions': (
        (0, 'BlockSize', 's', 4),
    ),
    'SparseToDenseOptions': (
        (0, 'ValidateIndices', 's', 1),
    ),
    'SparsityParameters': (
        (0, 'TraversalOrder', 'v', 4),
        (1, 'BlockMap', 'v', 4),
        (2, 'DimMetadata', 'vt', 'DimensionMetadata'),
    ),
    'SplitOptions': (
        (0, 'NumSplits', 's', 4),
    ),
    'SplitVOptions': (
        (0, 'NumSplits', 's', 4),
    ),
    'SqueezeOptions': (
        (0, 'SqueezeDims', 'v', 4),
    ),
    'StableHLOCompositeOptions': (
        (0, 'Name', 'str', 0),
        (1, 'DecompositionSubgraphIndex', 's', 4),
        (2, 'CompositeAttributes', 'v', 1),
        (3, 'CompositeAttributesFormat', 's', 1),
        (4, 'Version', 's', 4),
    ),
    'StablehloBroadcastInDimOptions': (
        (0, 'BroadcastDimensions', 'v', 8),
    ),
    'StablehloCaseOptions': (
        (0, 'BranchSubgraphIndices', 'v', 4),
    ),
    'StablehloCompareOptions': (
        (0, 'ComparisonDirection', 's', 4),
        (1, 'CompareType', 's', 4),
    ),
    'StablehloConcatenateOptions': (
        (0, 'Dimension', 's', 8),
    ),
    'StablehloConvolutionOptions': (
        (0, 'WindowStrides', 'v', 8),
        (1, 'Padding', 'v', 8),
        (2, 'LhsDilation', 'v', 8),
        (3, 'RhsDilation', 'v', 8),
        (4, 'WindowReversal', 'v', 1),
        (5, 'InputBatchDimension', 's', 8),
        (6, 'InputFeatureDimension', 's', 8),
        (7, 'InputSpatialDimensions', 'v', 8),
        (8, 'KernelInputFeatureDimension', 's', 8),
        (9, 'KernelOutputFeatureDimension', 's', 8),
        (10, 'KernelSpatialDimensions', 'v', 8),
        (11, 'OutputBatchDimension', 's', 8),
        (12, 'OutputFeatureDimension', 's', 8),
        (13, 'OutputSpatialDimensions', 'v', 8),
        (14, 'FeatureGroupCount', 's', 8),
        (15, 'BatchGroupCount', 's', 8),
        (16, 'PrecisionConfig', 'v', 4),
    ),
    'StablehloCustomCallOptions': (
        (0, 'CallTargetName', 'str', 0),
        (1, 'HasSideEffect', 's', 1),
        (2, 'BackendConfig', 'str', 0),
        (3, 'ApiVersion', 's', 4),
        (4, 'CalledComputations', 'v', 4),
        (5, 'CustomAttributes', 'v', 1),
    ),
    'StablehloDotGeneralOptions': (
        (0, 'LhsBatchingDimensions', 'v', 8),
        (1, 'RhsBatchingDimensions', 'v', 8),
        (2, 'LhsContractingDimensions', 'v', 8),
        (3, 'RhsContractingDimensions', 'v', 8),
        (4, 'PrecisionConfig', 'v', 4),
    ),
    'StablehloDynamicSliceOptions': (
        (0, 'SliceSizes', 'v', 8),
    ),
    'StablehloGatherOptions': (
        (0, 'OffsetDims', 'v', 8),
        (1, 'CollapsedSliceDims', 'v', 8),
        (2, 'StartIndexMap', 'v', 8),
        (3, 'IndexVectorDim', 's', 8),
        (4, 'SliceSizes', 'v', 8),
        (5, 'IndicesAreSorted', 's', 1),
    ),
    'StablehloIotaOptions': (
        (0, 'IotaDimension', 's', 8),
    ),
    'StablehloPadOptions': (
        (0, 'EdgePaddingLow', 'v', 8),
        (1, 'EdgePaddingHigh', 'v', 8),
        (2, 'InteriorPadding', 'v', 8),
    ),
    'StablehloReduceOptions': (
        (0, 'Dimensions', 'v', 8),
        (1, 'BodySubgraphIndex', 's', 4),
    ),
    'StablehloReduceWindowOptions': (
        (0, 'WindowDimensions', 'v', 8),
        (1, 'WindowStrides', 'v', 8),
        (2, 'BaseDilations', 'v', 8),
        (3, 'WindowDilations', 'v', 8),
        (4, 'Padding', 'v', 8),
        (5, 'BodySubgraphIndex', 's', 4),
    ),
    'StablehloRngBitGeneratorOptions': (
        (0, 'Algorithm', 's', 1),
    ),
    'StablehloScatterOptions': (
        (0, 'IndicesAreSorted', 's', 1),
        (1, 'UpdateWindowDims', 'v', 8),
        (2, 'InsertedWindowDims', 'v', 8),
        (3, 'ScatterDimsToOperandDims', 'v', 8),
        (4, 'IndexVectorDim', 's', 8),
        (5, 'UniqueIndices', 's', 1),
        (6, 'UpdateComputationSubgraphIndex', 's', 4),
    ),
    'StablehloSliceOptions': (
        (0, 'StartIndices', 'v', 8),
        (1, 'LimitIndices', 'v', 8),
        (2, 'Strides', 'v', 8),
    ),
    'StablehloSortOptions': (
        (0, 'Dimension', 's', 8),
        (1, 'IsStable', 's', 1),
        (2, 'ComparatorSubgraphIndex', 's', 4),
    ),
    'StablehloTransposeOptions': (
        (0, 'Permutation', 'v', 8),
    ),
    'StablehloWhileOptions': (
        (0, 'CondSubgraphIndex', 's', 4),
        (1, 'BodySubgraphIndex', 's', 4),
    ),
    'StridedSliceOptions': (
        (0, 'BeginMask', 's', 4),
        (1, 'EndMask', 's', 4),
        (2, 'EllipsisMask', 's', 4),
        (3, 'NewAxisMask', 's', 4),
        (4, 'ShrinkAxisMask', 's', 4),
        (5, 'Offset', 's', 1),
    ),
    'SubGraph': (
        (0, 'Tensors', 'vt', 'Tensor'),
        (1, 'Inputs', 'v', 4),
        (2, 'Outputs', 'v', 4),
        (3, 'Operators', 'vt', 'Operator'),
        (4, 'Name', 'str', 0),
        (5, 'DebugMetadataIndex', 's', 4),
    ),
    'SubOptions': (
        (0, 'FusedActivationFunction', 's', 1),
        (1, 'PotScaleInt16', 's', 1),
    ),
    'Tensor': (
        (0, 'Shape', 'v', 4),
        (1, 'Type', 's', 1),
        (2, 'Buffer', 's', 4),
        (3, 'Name', 'str', 0),
        (4, 'Quantization', 't', 'QuantizationParameters'),
        (5, 'IsVariable', 's', 1),
        (6, 'Sparsity', 't', 'SparsityParameters'),
        (7, 'ShapeSignature', 'v', 4),
        (8, 'HasRank', 's', 1),
        (9, 'VariantTensors', 'vt', 'VariantSubType'),
    ),
    'TensorMap': (
        (0, 'Name', 'str', 0),
        (1, 'TensorIndex', 's', 4),
    ),
    'TransposeConvOptions': (
        (0, 'Padding', 's', 1),
        (1, 'StrideW', 's', 4),
        (2, 'StrideH', 's', 4),
        (3, 'FusedActivationFunction', 's', 1),
        (4, 'QuantizedBiasType', 's', 1),
    ),
    'Uint16Vector': (
        (0, 'Values', 'v', 2),
    ),
    'Uint8Vector': (
        (0, 'Values', 'v', 1),
    ),
    'UnidirectionalSequenceLSTMOptions': (
        (0, 'FusedActivationFunction', 's', 1),
        (1, 'CellClip', 's', 4),
        (2, 'ProjClip', 's', 4),
        (3, 'TimeMajor', 's', 1),
        (4, 'AsymmetricQuantizeInputs', 's', 1),
        (5, 'DiagonalRecurrentTensors', 's', 1),
    ),
    'UniqueOptions': (
        (0, 'IdxOutType', 's', 1),
    ),
    'UnpackOptions': (
        (0, 'Num', 's', 4),
        (1, 'Axis', 's', 4),
    ),
    'VarHandleOptions': (
        (0, 'Container', 'str', 0),
        (1, 'SharedName', 'str', 0),
    ),
    'VariantSubType': (
        (0, 'Shape', 'v', 4),
        (1, 'Type', 's', 1),
        (2, 'HasRank', 's', 1),
    ),
    'WhileOptions': (
        (0, 'CondSubgraphIndex', 's', 4),
        (1, 'BodySubgraphIndex', 's', 4),
    ),
}

UNIONS = {
    'BuiltinOptions': {
        1: 'Conv2DOptions', 2: 'DepthwiseConv2DOptions', 3: 'ConcatEmbeddingsOptions',
        4: 'LSHProjectionOptions', 5: 'Pool2DOptions', 6: 'SVDFOptions',
        7: 'RNNOptions', 8: 'FullyConnectedOptions', 9: 'SoftmaxOptions',
        10: 'ConcatenationOptions', 11: 'AddOptions', 12: 'L2NormOptions',
        13: 'LocalResponseNormalizationOptions', 14: 'LSTMOptions', 15: 'ResizeBilinearOptions',
        16: 'CallOptions', 17: 'ReshapeOptions', 18: 'SkipGramOptions',
        19: 'SpaceToDepthOptions', 20: 'EmbeddingLookupSparseOptions', 21: 'MulOptions',
        22: 'PadOptions', 23: 'GatherOptions', 24: 'BatchToSpaceNDOptions',
        25: 'SpaceToBatchNDOptions', 26: 'TransposeOptions', 27: 'ReducerOptions',
        28: 'SubOptions', 29: 'DivOptions', 30: 'SqueezeOptions',
        31: 'SequenceRNNOptions', 32: 'StridedSliceOptions', 33: 'ExpOptions',
        34: 'TopKV2Options', 35: 'SplitOptions', 36: 'LogSoftmaxOptions',
        37: 'CastOptions', 38: 'DequantizeOptions', 39: 'MaximumMinimumOptions',
        40: 'ArgMaxOptions', 41: 'LessOptions', 42: 'NegOptions',
        43: 'PadV2Options', 44: 'GreaterOptions', 45: 'GreaterEqualOptions',
        46: 'LessEqualOptions', 47: 'SelectOptions', 48: 'SliceOptions',
        49: 'TransposeConvOptions', 50: 'SparseToDenseOptions', 51: 'TileOptions',
        52: 'ExpandDimsOptions', 53: 'EqualOptions', 54: 'NotEqualOptions',
        55: 'ShapeOptions', 56: 'PowOptions', 57: 'ArgMinOptions',
        58: 'FakeQuantOptions', 59: 'PackOptions', 60: 'LogicalOrOptions',
        61: 'OneHotOptions', 62: 'LogicalAndOptions', 63: 'LogicalNotOptions',
        64: 'UnpackOptions', 65: 'FloorDivOptions', 66: 'SquareOptions',
        67: 'ZerosLikeOptions', 68: 'FillOptions', 69: 'BidirectionalSequenceLSTMOptions',
        70: 'BidirectionalSequenceRNNOptions', 71: 'UnidirectionalSequenceLSTMOptions', 72: 'FloorModOptions',
        73: 'RangeOptions', 74: 'ResizeNearestNeighborOptions', 75: 'LeakyReluOptions',
        76: 'SquaredDifferenceOptions', 77: 'MirrorPadOptions', 78: 'AbsOptions',
        79: 'SplitVOptions', 80: 'UniqueOptions', 81: 'ReverseV2Options',
        82: 'AddNOptions', 83: 'GatherNdOptions', 84: 'CosOptions',
        85: 'WhereOptions', 86: 'RankOptions', 87: 'ReverseSequenceOptions',
        88: 'MatrixDiagOptions', 89: 'QuantizeOptions', 90: 'MatrixSetDiagOptions',
        91: 'HardSwishOptions', 92: 'IfOptions', 93: 'WhileOptions',
        94: 'DepthToSpaceOptions', 95: 'NonMaxSuppressionV4Options', 96: 'NonMaxSuppressionV5Options',
        97: 'ScatterNdOptions', 98: 'SelectV2Options', 99: 'DensifyOptions',
        100: 'SegmentSumOptions', 101: 'BatchMatMulOptions', 102: 'CumsumOptions',
        103: 'CallOnceOptions', 104: 'BroadcastToOptions', 105: 'Rfft2dOptions',
        106: 'Conv3DOptions', 107: 'HashtableOptions', 108: 'HashtableFindOptions',
        109: 'HashtableImportOptions', 110: 'HashtableSizeOptions', 111: 'VarHandleOptions',
        112: 'ReadVariableOptions', 113: 'AssignVariableOptions', 114: 'RandomOptions',
        115: 'BucketizeOptions', 116: 'GeluOptions', 117: 'DynamicUpdateSliceOptions',
        118: 'UnsortedSegmentProdOptions', 119: 'UnsortedSegmentMaxOptions', 120: 'UnsortedSegmentMinOptions',
        121: 'UnsortedSegmentSumOptions', 122: 'ATan2Options', 123: 'SignOptions',
        124: 'BitcastOptions', 125: 'BitwiseXorOptions', 126: 'RightShiftOptions',
    },
    'BuiltinOptions2': {
        1: 'StablehloConcatenateOptions', 2: 'StablehloBroadcastInDimOptions', 3: 'StablehloSliceOptions',
        4: 'StablehloConvolutionOptions', 5: 'StablehloCustomCallOptions', 6: 'StablehloReduceOptions',
        7: 'StablehloScatterOptions', 8: 'StablehloCompareOptions', 9: 'StablehloDynamicSliceOptions',
        10: 'StablehloPadOptions', 11: 'StablehloIotaOptions', 12: 'StablehloDotGeneralOptions',
        13: 'StablehloReduceWindowOptions', 14: 'StablehloSortOptions', 15: 'StablehloWhileOptions',
        16: 'StablehloGatherOptions', 17: 'StablehloTransposeOptions', 18: 'DilateOptions',
        19: 'StablehloRngBitGeneratorOptions', 20: 'ReduceWindowOptions', 21: 'StableHLOCompositeOptions',
        22: 'StablehloShiftLeftOptions', 23: 'StablehloCaseOptions',
    },
    'QuantizationDetails': {
        1: 'CustomQuantization', 2: 'BlockwiseQuantization',
    },
    'SparseIndexVector': {
        1: 'Int32Vector', 2: 'Uint16Vector', 3: 'Uint8Vector',
    },
}
